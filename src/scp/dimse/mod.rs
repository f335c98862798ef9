//! DIMSE command sets: parsing requests and encoding responses/requests (always Implicit VR
//! Little Endian, with the Command Group Length first).

use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;

/// DIMSE status codes used by the SCP and understood by the SCU.
pub mod status {
    /// Success.
    pub const SUCCESS: u16 = 0x0000;
    /// Refused: SOP class not supported (the command's SOP class is not the context's).
    pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
    /// Failure: unrecognised operation (a command the SCP does not implement).
    pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;
    /// Refused: out of resources (disk, file system, database).
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    /// Error: data set does not match SOP class (its SOPClassUID differs from the command's).
    pub const DATA_SET_DOES_NOT_MATCH_SOP_CLASS: u16 = 0xA900;
    /// Error: cannot understand (unparsable data set, missing or invalid UIDs).
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;

    /// Warning statuses (the instance was stored): coercion of data elements, elements
    /// discarded, data set does not match SOP class (storage warning).
    pub fn is_warning(status: u16) -> bool {
        matches!(status, 0x0001 | 0xB000 | 0xB006 | 0xB007) || (status & 0xF000) == 0xB000
    }

    /// Success or warning: the SCP kept the instance.
    pub fn is_stored(status: u16) -> bool {
        status == SUCCESS || is_warning(status)
    }

    /// A short name for logs and summaries.
    pub fn describe(status: u16) -> &'static str {
        match status {
            SUCCESS => "success",
            SOP_CLASS_NOT_SUPPORTED => "refused: SOP class not supported",
            UNRECOGNIZED_OPERATION => "unrecognised operation",
            OUT_OF_RESOURCES => "refused: out of resources",
            DATA_SET_DOES_NOT_MATCH_SOP_CLASS => "error: data set does not match SOP class",
            CANNOT_UNDERSTAND => "error: cannot understand",
            0x0110 => "processing failure",
            0x0124 => "refused: not authorized",
            0x0210 => "duplicate invocation",
            0x0212 => "mistyped argument",
            0xFE00 => "cancel",
            s if (s & 0xFF00) == 0xA700 => "refused: out of resources",
            s if (s & 0xFF00) == 0xA900 => "error: data set does not match SOP class",
            s if (s & 0xF000) == 0xC000 => "error: cannot understand",
            s if is_warning(s) => "warning",
            _ => "failure",
        }
    }
}

pub const C_STORE_RQ: u16 = 0x0001;
pub const C_STORE_RSP: u16 = 0x8001;
pub const C_ECHO_RQ: u16 = 0x0030;
pub const C_ECHO_RSP: u16 = 0x8030;
pub const C_CANCEL_RQ: u16 = 0x0FFF;
/// CommandDataSetType value meaning "no data set follows".
pub const NO_DATA_SET: u16 = 0x0101;

/// The fields of a received command set that the SCP/SCU act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub field: u16,
    pub message_id: Option<u16>,
    pub message_id_responded: Option<u16>,
    pub has_data_set: bool,
    pub affected_sop_class: Option<String>,
    pub affected_sop_instance: Option<String>,
    pub status: Option<u16>,
    pub error_comment: Option<String>,
}

/// Strip the padding of a UID / short text value.
pub fn trim_value(s: &str) -> &str {
    s.trim_end_matches(['\0', ' ']).trim_start_matches(' ')
}

/// Parse a command set (the concatenated command fragments).
///
/// The element headers are walked first: every length must fit in the bytes (dicom-object
/// reserves what a length says, so a 13-byte command claiming a 3 GiB value would otherwise make
/// the reader allocate and fill that much).
pub fn parse_command(bytes: &[u8]) -> Result<Command, String> {
    super::completeness::check_bytes(bytes, IMPLICIT_VR_LITTLE_ENDIAN.uid(), false)
        .map_err(|e| format!("malformed command set ({} bytes): {e}", bytes.len()))?;
    let ts = IMPLICIT_VR_LITTLE_ENDIAN.erased();
    let obj = InMemDicomObject::read_dataset_with_ts(bytes, &ts)
        .map_err(|e| format!("unparsable command set ({} bytes): {e}", bytes.len()))?;
    let u16_of = |tag: Tag| -> Result<Option<u16>, String> {
        match obj.element_opt(tag) {
            Ok(Some(e)) => e
                .to_int::<u16>()
                .map(Some)
                .map_err(|err| format!("command element {tag}: {err}")),
            Ok(None) => Ok(None),
            Err(err) => Err(format!("command element {tag}: {err}")),
        }
    };
    let str_of = |tag: Tag| -> Option<String> {
        obj.element_opt(tag)
            .ok()
            .flatten()
            .and_then(|e| e.to_str().ok())
            .map(|s| trim_value(&s).to_string())
            .filter(|s| !s.is_empty())
    };
    let field = u16_of(tags::COMMAND_FIELD)?.ok_or("command set without CommandField")?;
    let data_set_type =
        u16_of(tags::COMMAND_DATA_SET_TYPE)?.ok_or("command set without CommandDataSetType")?;
    Ok(Command {
        field,
        message_id: u16_of(tags::MESSAGE_ID)?,
        message_id_responded: u16_of(tags::MESSAGE_ID_BEING_RESPONDED_TO)?,
        has_data_set: data_set_type != NO_DATA_SET,
        affected_sop_class: str_of(tags::AFFECTED_SOP_CLASS_UID),
        affected_sop_instance: str_of(tags::AFFECTED_SOP_INSTANCE_UID),
        status: u16_of(tags::STATUS)?,
        error_comment: str_of(tags::ERROR_COMMENT),
    })
}

fn uid_value(uid: &str) -> PrimitiveValue {
    let mut s = uid.to_string();
    if s.len() % 2 == 1 {
        s.push('\0');
    }
    PrimitiveValue::from(s)
}

fn text_value(text: &str, max: usize) -> PrimitiveValue {
    // LO: at most 64 characters, no backslash or control characters
    let mut s: String = text
        .chars()
        .map(|c| if c == '\\' || c.is_control() { ' ' } else { c })
        .filter(|c| c.is_ascii())
        .take(max)
        .collect();
    if s.len() % 2 == 1 {
        s.push(' ');
    }
    PrimitiveValue::from(s)
}

/// Encode a command object with its Command Group Length.
fn encode(obj: &InMemDicomObject) -> Vec<u8> {
    let ts = IMPLICIT_VR_LITTLE_ENDIAN.erased();
    let mut body = Vec::with_capacity(256);
    // writing a small in-memory object to a Vec cannot fail for well-formed values
    if let Err(e) = obj.write_dataset_with_ts(&mut body, &ts) {
        tracing::error!("cannot encode a DIMSE command: {e}");
    }
    let mut out = Vec::with_capacity(12 + body.len());
    out.extend_from_slice(&[0, 0, 0, 0, 4, 0, 0, 0]);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// A response command set (C-ECHO-RSP, C-STORE-RSP, or the failure answer to another request).
pub fn encode_response(
    field: u16,
    message_id_responded: u16,
    sop_class: Option<&str>,
    sop_instance: Option<&str>,
    status: u16,
    error_comment: Option<&str>,
) -> Vec<u8> {
    let mut obj = InMemDicomObject::new_empty();
    if let Some(c) = sop_class {
        obj.put(DataElement::new(
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            uid_value(c),
        ));
    }
    obj.put(DataElement::new(
        tags::COMMAND_FIELD,
        VR::US,
        PrimitiveValue::from(field),
    ));
    obj.put(DataElement::new(
        tags::MESSAGE_ID_BEING_RESPONDED_TO,
        VR::US,
        PrimitiveValue::from(message_id_responded),
    ));
    obj.put(DataElement::new(
        tags::COMMAND_DATA_SET_TYPE,
        VR::US,
        PrimitiveValue::from(NO_DATA_SET),
    ));
    obj.put(DataElement::new(
        tags::STATUS,
        VR::US,
        PrimitiveValue::from(status),
    ));
    if let Some(text) = error_comment {
        if status != status::SUCCESS {
            obj.put(DataElement::new(
                tags::ERROR_COMMENT,
                VR::LO,
                text_value(text, 64),
            ));
        }
    }
    if let Some(i) = sop_instance {
        obj.put(DataElement::new(
            tags::AFFECTED_SOP_INSTANCE_UID,
            VR::UI,
            uid_value(i),
        ));
    }
    encode(&obj)
}

/// A C-STORE-RQ command set (medium priority).
pub fn encode_c_store_rq(message_id: u16, sop_class: &str, sop_instance: &str) -> Vec<u8> {
    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(
        tags::AFFECTED_SOP_CLASS_UID,
        VR::UI,
        uid_value(sop_class),
    ));
    obj.put(DataElement::new(
        tags::COMMAND_FIELD,
        VR::US,
        PrimitiveValue::from(C_STORE_RQ),
    ));
    obj.put(DataElement::new(
        tags::MESSAGE_ID,
        VR::US,
        PrimitiveValue::from(message_id),
    ));
    obj.put(DataElement::new(
        tags::PRIORITY,
        VR::US,
        PrimitiveValue::from(0u16),
    ));
    obj.put(DataElement::new(
        tags::COMMAND_DATA_SET_TYPE,
        VR::US,
        PrimitiveValue::from(0x0000u16),
    ));
    obj.put(DataElement::new(
        tags::AFFECTED_SOP_INSTANCE_UID,
        VR::UI,
        uid_value(sop_instance),
    ));
    encode(&obj)
}

/// A C-ECHO-RQ command set.
pub fn encode_c_echo_rq(message_id: u16) -> Vec<u8> {
    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(
        tags::AFFECTED_SOP_CLASS_UID,
        VR::UI,
        uid_value(dicom_dictionary_std::uids::VERIFICATION),
    ));
    obj.put(DataElement::new(
        tags::COMMAND_FIELD,
        VR::US,
        PrimitiveValue::from(C_ECHO_RQ),
    ));
    obj.put(DataElement::new(
        tags::MESSAGE_ID,
        VR::US,
        PrimitiveValue::from(message_id),
    ));
    obj.put(DataElement::new(
        tags::COMMAND_DATA_SET_TYPE,
        VR::US,
        PrimitiveValue::from(NO_DATA_SET),
    ));
    encode(&obj)
}

#[cfg(test)]
mod tests;
