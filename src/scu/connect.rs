//! The SCU's association: over plain TCP, or inside TLS when `ScuOptions::tls` is set (the
//! server's certificate checked against the given CA certificates and the host of the address).

use std::net::TcpStream;

use dicom_ul::association::client::{ClientAssociation, TlsStream};
use dicom_ul::association::{ClientAssociationOptions, Error as UlError};
use tracing::warn;

use super::ScuOptions;

/// An established association, over TCP or TLS (the code using it is generic over the stream).
pub(super) enum Connected {
    Plain(ClientAssociation<TcpStream>),
    Tls(Box<ClientAssociation<TlsStream>>),
}

/// The association options every association of `opts` starts from.
pub(super) fn options(opts: &ScuOptions) -> ClientAssociationOptions<'_> {
    ClientAssociationOptions::new()
        .calling_ae_title(opts.calling_ae.as_str())
        .called_ae_title(opts.called_ae.as_str())
        .max_pdu_length(opts.max_pdu)
        .connection_timeout(opts.timeout)
        .read_timeout(opts.timeout)
        .write_timeout(opts.timeout)
}

/// The host part of `HOST:PORT` (`[v6]:PORT` without its brackets): the name the server's
/// certificate must carry.
pub(super) fn host(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Connect to `opts.addr` (TLS when `opts.tls` is set) and negotiate the association `o`.
pub(super) fn establish(
    opts: &ScuOptions,
    o: ClientAssociationOptions<'_>,
) -> Result<Connected, UlError> {
    // no Nagle: a C-STORE ends with a short segment and then waits for the response
    let nodelay = |s: &TcpStream| {
        if let Err(e) = s.set_nodelay(true) {
            warn!("cannot set TCP_NODELAY: {e}");
        }
    };
    match &opts.tls {
        None => {
            let mut a = o.establish(opts.addr.as_str())?;
            nodelay(a.inner_stream());
            Ok(Connected::Plain(a))
        }
        Some(tls) => {
            let mut a = o
                .tls_config(tls.config())
                .server_name(host(&opts.addr))
                .establish_tls(opts.addr.as_str())?;
            nodelay(a.inner_stream().get_ref());
            Ok(Connected::Tls(Box::new(a)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::host;

    #[test]
    fn host_of_an_address() {
        assert_eq!(host("127.0.0.1:2762"), "127.0.0.1");
        assert_eq!(host("pacs.example.org:2762"), "pacs.example.org");
        assert_eq!(host("[::1]:2762"), "::1");
        assert_eq!(host("localhost"), "localhost");
    }
}
