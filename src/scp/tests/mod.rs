//! Tests of the SCP as a whole that belong to no one file: generated PDUs (`pdu_properties`).

mod pdu_properties;
