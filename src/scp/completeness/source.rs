//! Where the walked bytes come from: memory, the temp file (values skipped by seeking) or an
//! inflating stream (values inflated and dropped).

use std::fs::File;
use std::io::{self, BufReader, Read};

use super::Incomplete;

/// The bytes of a data set, read in order.
pub(super) trait Source {
    /// Fill `buf` from the data set; fewer bytes only at its end.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, Incomplete>;
    /// Skip `n` bytes; fewer only at the end of the data set.
    fn skip(&mut self, n: u64) -> Result<u64, Incomplete>;
}

pub(super) struct Slice<'a>(pub &'a [u8]);

impl Source for Slice<'_> {
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, Incomplete> {
        let n = buf.len().min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
    fn skip(&mut self, n: u64) -> Result<u64, Incomplete> {
        let k = usize::try_from(n).unwrap_or(usize::MAX).min(self.0.len());
        self.0 = &self.0[k..];
        Ok(k as u64)
    }
}

/// The temp file from the data set's first byte: values are skipped by seeking, so only the
/// element headers are read.
pub(super) struct FileSource {
    pub reader: BufReader<File>,
    pub left: u64,
}

impl Source for FileSource {
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, Incomplete> {
        let n = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        self.reader
            .read_exact(&mut buf[..n])
            .map_err(|e| Incomplete::Unreadable(e.to_string()))?;
        self.left -= n as u64;
        Ok(n)
    }
    fn skip(&mut self, n: u64) -> Result<u64, Incomplete> {
        let k = n.min(self.left);
        let step = i64::try_from(k).map_err(|e| Incomplete::Unreadable(e.to_string()))?;
        self.reader
            .seek_relative(step)
            .map_err(|e| Incomplete::Unreadable(e.to_string()))?;
        self.left -= k;
        Ok(k)
    }
}

/// An inflating reader: skipped values are inflated and dropped.
pub(super) struct Inflating<'a>(pub Box<dyn Read + 'a>);

impl Inflating<'_> {
    fn error(e: io::Error) -> Incomplete {
        match e.kind() {
            // flate2: "incomplete deflate stream" / "corrupt deflate stream"
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::InvalidInput
            | io::ErrorKind::InvalidData => Incomplete::Inflate(e.to_string()),
            _ => Incomplete::Unreadable(e.to_string()),
        }
    }
}

impl Source for Inflating<'_> {
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, Incomplete> {
        let mut n = 0;
        while n < buf.len() {
            match self.0.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Self::error(e)),
            }
        }
        Ok(n)
    }
    fn skip(&mut self, n: u64) -> Result<u64, Incomplete> {
        io::copy(&mut (&mut self.0).take(n), &mut io::sink()).map_err(Self::error)
    }
}
