//! git's pkt-line framing and the side-band multiplexing on top of it.
//!
//! A pkt-line is four hex digits of length (including themselves) and the
//! payload; `0000` is a flush. With side-band-64k every server message is a
//! pkt-line whose first byte names the band: 1 data, 2 progress (shown as
//! `remote: …`), 3 a fatal error.

use std::io::{self, Read, Write};

use super::GitError;

/// Longest pkt-line, header included.
const MAX_PKT_LEN: usize = 65520;
/// Longest payload of one side-band packet (header and band byte excluded).
const MAX_BAND_PAYLOAD: usize = MAX_PKT_LEN - 5;

/// One pkt-line read from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Pkt {
    Flush,
    /// `0001`, the protocol v2 section delimiter.
    Delim,
    Data(Vec<u8>),
}

/// Reads one pkt-line; `None` at a clean end of input.
pub fn read_pkt(r: &mut impl Read) -> Result<Option<Pkt>, GitError> {
    let mut header = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(GitError::Protocol("truncated pkt-line header".into())),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(GitError::Io(e)),
        }
    }
    let len = std::str::from_utf8(&header)
        .ok()
        .and_then(|h| usize::from_str_radix(h, 16).ok())
        .ok_or_else(|| GitError::Protocol(format!("bad pkt-line header {header:?}")))?;
    match len {
        0 => Ok(Some(Pkt::Flush)),
        1 => Ok(Some(Pkt::Delim)),
        2..=3 => Err(GitError::Protocol(format!("bad pkt-line length {len}"))),
        _ if len > MAX_PKT_LEN => Err(GitError::Protocol(format!("pkt-line too long ({len})"))),
        _ => {
            let mut data = vec![0u8; len - 4];
            r.read_exact(&mut data).map_err(GitError::Io)?;
            Ok(Some(Pkt::Data(data)))
        }
    }
}

/// The payload of a data line without its trailing newline.
pub fn text(data: &[u8]) -> &[u8] {
    data.strip_suffix(b"\n").unwrap_or(data)
}

/// Writes `data` as one pkt-line.
pub fn write_pkt(w: &mut impl Write, data: &[u8]) -> io::Result<()> {
    if data.len() + 4 > MAX_PKT_LEN {
        return Err(io::Error::other("pkt-line payload too long"));
    }
    write!(w, "{:04x}", data.len() + 4)?;
    w.write_all(data)
}

/// Writes a flush packet.
pub fn write_flush(w: &mut impl Write) -> io::Result<()> {
    w.write_all(b"0000")
}

/// Writes a protocol-v0 ref advertisement: `<id> <name>` per ref, the
/// capabilities after a NUL on the first line (or on a `capabilities^{}`
/// line when there are no refs), then a flush.
pub fn write_advertisement(
    w: &mut impl Write,
    refs: &[(String, gix::ObjectId)],
    caps: &str,
) -> io::Result<()> {
    if refs.is_empty() {
        let line = format!(
            "{} capabilities^{{}}\0{caps}\n",
            gix::ObjectId::null(gix::hash::Kind::Sha1)
        );
        write_pkt(w, line.as_bytes())?;
    }
    for (i, (name, id)) in refs.iter().enumerate() {
        let line = if i == 0 {
            format!("{id} {name}\0{caps}\n")
        } else {
            format!("{id} {name}\n")
        };
        write_pkt(w, line.as_bytes())?;
    }
    write_flush(w)
}

/// Where server output goes: straight to the client, or multiplexed on
/// side bands when the client asked for side-band-64k.
pub struct Output<W: Write> {
    inner: W,
    sideband: bool,
    /// The client asked for no progress (errors still go out).
    quiet: bool,
}

impl<W: Write> Output<W> {
    /// Output without side bands (used for the ref advertisement).
    pub fn new(inner: W) -> Output<W> {
        Output {
            inner,
            sideband: false,
            quiet: false,
        }
    }

    /// Switches to side-band-64k framing, after the client asked for it.
    pub fn use_sideband(&mut self, sideband: bool, quiet: bool) {
        self.sideband = sideband;
        self.quiet = quiet;
    }

    /// The raw stream, for pkt-lines outside any band.
    pub fn raw(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Primary data (band 1): pack bytes or the status report.
    pub fn data(&mut self, bytes: &[u8]) -> io::Result<()> {
        if !self.sideband {
            return self.inner.write_all(bytes);
        }
        self.band(1, bytes)
    }

    /// A progress line shown as `remote: …` (dropped without side bands or
    /// when quiet).
    pub fn progress(&mut self, line: &str) -> io::Result<()> {
        if !self.sideband || self.quiet {
            return Ok(());
        }
        self.band(2, format!("{line}\n").as_bytes())?;
        self.inner.flush()
    }

    /// A message the pusher must see even when quiet: it goes on the
    /// progress band (shown as `remote: …`), not the fatal band.
    pub fn message(&mut self, line: &str) -> io::Result<()> {
        if !self.sideband {
            return Ok(());
        }
        self.band(2, format!("{line}\n").as_bytes())?;
        self.inner.flush()
    }

    fn band(&mut self, band: u8, bytes: &[u8]) -> io::Result<()> {
        for chunk in bytes.chunks(MAX_BAND_PAYLOAD) {
            write!(self.inner, "{:04x}", chunk.len() + 5)?;
            self.inner.write_all(&[band])?;
            self.inner.write_all(chunk)?;
        }
        Ok(())
    }

    /// Whether side bands are in use.
    pub fn is_sideband(&self) -> bool {
        self.sideband
    }

    /// Flushes everything written so far to the client.
    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkt_lines_round_trip() {
        let mut buf = Vec::new();
        write_pkt(&mut buf, b"hello\n").unwrap();
        write_flush(&mut buf).unwrap();
        assert_eq!(buf, b"000ahello\n0000");
        let mut r = &buf[..];
        assert_eq!(
            read_pkt(&mut r).unwrap(),
            Some(Pkt::Data(b"hello\n".to_vec()))
        );
        assert_eq!(read_pkt(&mut r).unwrap(), Some(Pkt::Flush));
        assert_eq!(read_pkt(&mut r).unwrap(), None);
    }

    #[test]
    fn bad_headers_are_errors_not_panics() {
        for input in [&b"zzzz"[..], b"0002", b"ffff", b"00", b"0009ab"] {
            assert!(read_pkt(&mut &input[..]).is_err(), "{input:?}");
        }
    }

    #[test]
    fn side_band_splits_large_data() {
        let mut out = Output::new(Vec::new());
        out.use_sideband(true, false);
        out.data(&vec![7u8; MAX_BAND_PAYLOAD + 10]).unwrap();
        let buf = out.inner;
        assert_eq!(&buf[..5], b"fff0\x01");
        let second = 4 + 1 + MAX_BAND_PAYLOAD;
        assert_eq!(&buf[second..second + 5], b"000f\x01");
    }
}
