//! Blocking `Read`/`Write` over an SSH channel, so the git protocol (whose
//! pack indexing in gix is synchronous) runs on a blocking thread while the
//! SSH session stays async. Both directions are bounded: a slow client
//! slows the reader, and a fast one waits for the node.

use std::io::{self, Read, Write};

use bytes::Bytes;
use russh::ChannelWriteHalf;
use russh::server::Msg;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

/// Chunks of client input waiting for the protocol thread.
pub const INPUT_QUEUE: usize = 32;

/// The client's stdin, fed by the session task.
pub struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl ChannelReader {
    pub fn new(rx: mpsc::Receiver<Bytes>) -> ChannelReader {
        ChannelReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0), // the client sent EOF or went away
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// The client's stdout (or stderr, with `ext = Some(1)`).
pub struct ChannelWriter {
    half: std::sync::Arc<ChannelWriteHalf<Msg>>,
    runtime: Handle,
    ext: Option<u32>,
}

impl ChannelWriter {
    pub fn new(
        half: std::sync::Arc<ChannelWriteHalf<Msg>>,
        runtime: Handle,
        ext: Option<u32>,
    ) -> ChannelWriter {
        ChannelWriter { half, runtime, ext }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let data = Bytes::copy_from_slice(buf);
        let sent = match self.ext {
            None => self.runtime.block_on(self.half.data_bytes(data)),
            Some(ext) => self
                .runtime
                .block_on(self.half.extended_data_bytes(ext, data)),
        };
        sent.map_err(|e| io::Error::new(io::ErrorKind::BrokenPipe, e))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
