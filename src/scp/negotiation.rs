//! Association negotiation: what we accept, the acceptor options, and the hand-written
//! "too busy" rejection (who is accepted is `admission`'s).

use std::time::Duration;

use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_ul::association::server::{AccessControl, ServerAssociationOptions};
use dicom_ul::pdu::{
    AssociationRJ, AssociationRJResult, AssociationRJServiceProviderPresentationReason,
    AssociationRJSource, Pdu,
};
use tokio::io::AsyncWriteExt;
use tracing::{info, warn};

/// An accepted abstract syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SopClass {
    pub uid: &'static str,
    pub name: &'static str,
    /// Instances of this class feed the analysis engine (series marked analysable).
    pub analysed: bool,
}

const fn kept(uid: &'static str, name: &'static str) -> SopClass {
    SopClass {
        uid,
        name,
        analysed: false,
    }
}

/// The Verification SOP class (C-ECHO).
pub const VERIFICATION: &str = "1.2.840.10008.1.1";

/// Every abstract syntax the SCP accepts: Verification, the two analysed CT classes, and the
/// classes a scanner or PACS forwarding a CT study usually sends along (kept on disk and in the
/// database, marked "not analysed", so a forwarding PACS sees no failures).
///
/// Deliberately not accepted (rejected per presentation context, the rest of the association
/// proceeds): other image modalities (MR, PET, US, CR/DX...: a QA tool for CT must not become a
/// silent archive for them), RT Plan / RT Dose / RT Image (treatment objects belong to the TPS and
/// record-and-verify, not to a CT QA box), and private classes (e.g. Siemens CSA Non-Image).
pub const ACCEPTED_SOP_CLASSES: &[SopClass] = &[
    SopClass {
        uid: VERIFICATION,
        name: "Verification",
        analysed: false,
    },
    SopClass {
        uid: "1.2.840.10008.5.1.4.1.1.2",
        name: "CT Image Storage",
        analysed: true,
    },
    SopClass {
        uid: "1.2.840.10008.5.1.4.1.1.2.1",
        name: "Enhanced CT Image Storage",
        analysed: true,
    },
    kept(
        "1.2.840.10008.5.1.4.1.1.2.2",
        "Legacy Converted Enhanced CT Image Storage",
    ),
    kept(
        "1.2.840.10008.5.1.4.1.1.7",
        "Secondary Capture Image Storage",
    ),
    kept(
        "1.2.840.10008.5.1.4.1.1.7.1",
        "Multi-frame Single Bit Secondary Capture Image Storage",
    ),
    kept(
        "1.2.840.10008.5.1.4.1.1.7.2",
        "Multi-frame Grayscale Byte Secondary Capture Image Storage",
    ),
    kept(
        "1.2.840.10008.5.1.4.1.1.7.3",
        "Multi-frame Grayscale Word Secondary Capture Image Storage",
    ),
    kept(
        "1.2.840.10008.5.1.4.1.1.7.4",
        "Multi-frame True Color Secondary Capture Image Storage",
    ),
    kept(
        "1.2.840.10008.5.1.4.1.1.88.67",
        "X-Ray Radiation Dose SR Storage",
    ),
    kept("1.2.840.10008.5.1.4.1.1.88.11", "Basic Text SR Storage"),
    kept("1.2.840.10008.5.1.4.1.1.88.22", "Enhanced SR Storage"),
    kept("1.2.840.10008.5.1.4.1.1.88.33", "Comprehensive SR Storage"),
    kept(
        "1.2.840.10008.5.1.4.1.1.88.34",
        "Comprehensive 3D SR Storage",
    ),
    kept(
        "1.2.840.10008.5.1.4.1.1.88.59",
        "Key Object Selection Document Storage",
    ),
    kept(
        "1.2.840.10008.5.1.4.1.1.11.1",
        "Grayscale Softcopy Presentation State Storage",
    ),
    kept("1.2.840.10008.5.1.4.1.1.104.1", "Encapsulated PDF Storage"),
    kept("1.2.840.10008.5.1.4.1.1.66", "Raw Data Storage"),
    kept("1.2.840.10008.5.1.4.1.1.481.3", "RT Structure Set Storage"),
];

/// Is `uid` an analysed class (CT Image Storage or Enhanced CT Image Storage)?
pub fn is_analysable_sop_class(uid: &str) -> bool {
    ACCEPTED_SOP_CLASSES
        .iter()
        .any(|c| c.uid == uid && c.analysed)
}

/// The transfer syntaxes the SCP accepts (each kept only if the codecs compiled into hu-red
/// can decode it, see [`accepted_transfer_syntaxes`]). The proposer's order decides among them.
///
/// Not accepted, so that senders fall back to one of these: JPEG Baseline 8-bit (…4.50; lossy
/// and 8 bits cannot hold CT numbers), JPEG Extended 12-bit (…4.51; lossy, and the pure-Rust
/// decoder cannot decode it), Explicit VR Big Endian (…1.2.2; retired in 2006: every sender also
/// offers a little-endian syntax), and anything the engine cannot decode.
pub const TRANSFER_SYNTAXES: &[(&str, &str)] = &[
    ("1.2.840.10008.1.2.1", "Explicit VR Little Endian"),
    ("1.2.840.10008.1.2", "Implicit VR Little Endian"),
    (
        "1.2.840.10008.1.2.1.99",
        "Deflated Explicit VR Little Endian",
    ),
    (
        "1.2.840.10008.1.2.4.70",
        "JPEG Lossless, First-Order Prediction (Process 14 SV1)",
    ),
    (
        "1.2.840.10008.1.2.4.57",
        "JPEG Lossless, Non-Hierarchical (Process 14)",
    ),
    ("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless"),
    ("1.2.840.10008.1.2.4.81", "JPEG-LS Near-Lossless"),
    ("1.2.840.10008.1.2.4.90", "JPEG 2000 (Lossless Only)"),
    ("1.2.840.10008.1.2.4.91", "JPEG 2000"),
    ("1.2.840.10008.1.2.5", "RLE Lossless"),
];

/// [`TRANSFER_SYNTAXES`] filtered by what the transfer syntax registry compiled into this build
/// can parse and decode (a syntax whose codec is missing is left out, with a warning).
pub fn accepted_transfer_syntaxes() -> Vec<&'static str> {
    TRANSFER_SYNTAXES
        .iter()
        .filter(|(uid, name)| {
            let ok = TransferSyntaxRegistry
                .get(uid)
                .is_some_and(|ts| !ts.is_unsupported() && ts.can_decode_all());
            if !ok {
                warn!("transfer syntax {name} ({uid}) left out: no decoder compiled in");
            }
            ok
        })
        .map(|(uid, _)| *uid)
        .collect()
}

/// The dicom-ul acceptor options for one connection, `policy` deciding who is accepted.
pub(crate) fn server_options<A: AccessControl>(
    ae_title: &str,
    max_pdu: u32,
    write_timeout: Duration,
    transfer_syntaxes: &[&'static str],
    policy: A,
) -> ServerAssociationOptions<'static, A, dicom_ul::association::server::DefaultNegotiation> {
    let mut options = ServerAssociationOptions::new()
        .ae_access_control(policy)
        .ae_title(ae_title.trim().to_string())
        .max_pdu_length(max_pdu)
        .strict(true)
        .promiscuous(false)
        .write_timeout(write_timeout);
    for class in ACCEPTED_SOP_CLASSES {
        options = options.with_abstract_syntax(class.uid);
    }
    for ts in transfer_syntaxes {
        options = options.with_transfer_syntax(*ts);
    }
    options
}

/// Answer a connection that is admitted no slot because of a cap (`why`, for the log): read its
/// A-ASSOCIATE-RQ (so that the reply is not lost to a reset), then A-ASSOCIATE-RJ
/// rejected-transient, source service-provider (presentation related), reason
/// local-limit-exceeded. `read_timeout` bounds the whole exchange. Plain or inside TLS.
pub(crate) async fn reject_busy<S>(mut stream: S, read_timeout: Duration, max_pdu: u32, why: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buf = bytes::BytesMut::with_capacity(16 * 1024);
    let rq = tokio::time::timeout(
        read_timeout,
        dicom_ul::association::read_pdu_from_wire_async(&mut stream, &mut buf, max_pdu, true),
    )
    .await;
    let calling = match rq {
        Ok(Ok(Pdu::AssociationRQ(rq))) => rq.calling_ae_title,
        Ok(Ok(other)) => {
            warn!(
                "busy, and the peer sent {} instead of an A-ASSOCIATE-RQ: closed",
                other.short_description()
            );
            return;
        }
        Ok(Err(e)) => {
            warn!("busy, and the peer's first PDU is unreadable ({e}): closed");
            return;
        }
        Err(_) => {
            warn!("busy, and no A-ASSOCIATE-RQ within {read_timeout:?}: closed");
            return;
        }
    };
    let rj = Pdu::AssociationRJ(AssociationRJ {
        result: AssociationRJResult::Transient,
        source: AssociationRJSource::ServiceProviderPresentation(
            AssociationRJServiceProviderPresentationReason::LocalLimitExceeded,
        ),
    });
    let mut out = Vec::with_capacity(16);
    if let Err(e) = dicom_ul::write_pdu(&mut out, &rj) {
        warn!("cannot encode A-ASSOCIATE-RJ: {e}");
        return;
    }
    let sent = tokio::time::timeout(read_timeout.max(Duration::from_secs(1)), async {
        stream.write_all(&out).await?;
        stream.shutdown().await
    })
    .await;
    match sent {
        Ok(Ok(())) => info!(
            calling_ae = %calling,
            "association rejected (transient, local limit exceeded): {why}"
        ),
        Ok(Err(e)) => warn!(calling_ae = %calling, "cannot send A-ASSOCIATE-RJ: {e}"),
        Err(_) => warn!(calling_ae = %calling, "cannot send A-ASSOCIATE-RJ: timed out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_transfer_syntax_is_decodable_in_this_build() {
        // the list is meant to be exactly what the engine decodes: a missing codec is a build
        // configuration bug (features of dicom-pixeldata / dicom-object)
        let accepted = accepted_transfer_syntaxes();
        let all: Vec<&str> = TRANSFER_SYNTAXES.iter().map(|(u, _)| *u).collect();
        assert_eq!(accepted, all);
        assert!(!accepted.contains(&"1.2.840.10008.1.2.4.51"));
        assert!(!accepted.contains(&"1.2.840.10008.1.2.4.50"));
    }

    #[test]
    fn analysed_classes() {
        assert!(is_analysable_sop_class("1.2.840.10008.5.1.4.1.1.2"));
        assert!(is_analysable_sop_class("1.2.840.10008.5.1.4.1.1.2.1"));
        assert!(!is_analysable_sop_class("1.2.840.10008.5.1.4.1.1.7"));
        assert!(!is_analysable_sop_class("1.2.840.10008.5.1.4.1.1.4"));
        // no duplicates
        for (i, a) in ACCEPTED_SOP_CLASSES.iter().enumerate() {
            assert!(ACCEPTED_SOP_CLASSES[i + 1..].iter().all(|b| b.uid != a.uid));
        }
    }
}
