//! Batched UDP: `recvmmsg(2)` takes every query waiting on the socket (up
//! to a batch) in one system call and `sendmmsg(2)` sends their replies in
//! one, which under load halves the system calls per query, the largest
//! cost left once answers are copied from pre-rendered bytes. Each reply
//! goes back to the address its query came from, passed to the kernel as
//! it gave it.

use std::io::{self, ErrorKind};
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};

use tokio::io::Interest;
use tokio::net::UdpSocket;
use tracing::debug;

/// Datagrams read (and replies sent) per system call.
pub const BATCH: usize = 32;

/// Room for one batch of queries and their replies.
pub struct Batch {
    queries: Vec<Box<[u8]>>,
    lens: [usize; BATCH],
    addrs: [libc::sockaddr_storage; BATCH],
    addr_lens: [libc::socklen_t; BATCH],
    /// The reply to each query; empty when there is none to send.
    replies: Vec<Vec<u8>>,
    received: usize,
}

/// One received query and where its reply goes.
pub struct Slot<'b> {
    pub query: &'b [u8],
    /// `None` for a source that is not IPv4 or IPv6 (not expected).
    pub src: Option<SocketAddr>,
    /// The reply; left empty, nothing is sent.
    pub reply: &'b mut Vec<u8>,
}

impl Batch {
    /// Buffers for queries of up to `max_query` bytes (longer ones are cut)
    /// and replies of about `reply_capacity`.
    pub fn new(max_query: usize, reply_capacity: usize) -> Batch {
        Batch {
            queries: (0..BATCH)
                .map(|_| vec![0u8; max_query].into_boxed_slice())
                .collect(),
            lens: [0; BATCH],
            // SAFETY: sockaddr_storage is plain data; all zeroes is valid.
            addrs: unsafe { zeroed() },
            addr_lens: [0; BATCH],
            replies: (0..BATCH)
                .map(|_| Vec::with_capacity(reply_capacity))
                .collect(),
            received: 0,
        }
    }

    /// How many queries the last `receive` got.
    pub fn len(&self) -> usize {
        self.received
    }

    pub fn is_empty(&self) -> bool {
        self.received == 0
    }

    /// The `i`th query of the batch, its source and its (cleared) reply.
    pub fn slot(&mut self, i: usize) -> Slot<'_> {
        let reply = &mut self.replies[i];
        reply.clear();
        Slot {
            query: &self.queries[i][..self.lens[i]],
            src: socket_addr(&self.addrs[i]),
            reply,
        }
    }

    /// Reads the queries waiting on `socket`, up to a batch, without
    /// waiting: `WouldBlock` when there are none (and tokio then waits for
    /// readiness again).
    pub fn receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.received = 0;
        let fd = socket.as_raw_fd();
        let received = socket.try_io(Interest::READABLE, || self.recvmmsg(fd))?;
        self.received = received;
        Ok(received)
    }

    fn recvmmsg(&mut self, fd: RawFd) -> io::Result<usize> {
        // SAFETY: iovec and mmsghdr are plain data; zeroed is valid (null
        // pointers, zero lengths) and every used entry is filled below.
        let mut iov: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for i in 0..BATCH {
            iov[i] = libc::iovec {
                iov_base: self.queries[i].as_mut_ptr().cast(),
                iov_len: self.queries[i].len(),
            };
            let header = &mut headers[i].msg_hdr;
            header.msg_name = (&raw mut self.addrs[i]).cast();
            header.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_iov = &raw mut iov[i];
            header.msg_iovlen = 1;
        }
        // SAFETY: every header points at a live buffer of the length given
        // and at a sockaddr_storage for the source, all owned by `self` or
        // this frame for the duration of the call.
        let got = unsafe {
            libc::recvmmsg(
                fd,
                headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        let Ok(got) = usize::try_from(got) else {
            return Err(io::Error::last_os_error());
        };
        for (i, header) in headers.iter().enumerate().take(got) {
            self.lens[i] = (header.msg_len as usize).min(self.queries[i].len());
            self.addr_lens[i] = header.msg_hdr.msg_namelen;
        }
        Ok(got.min(BATCH))
    }

    /// Sends every non-empty reply of the batch to its query's source,
    /// waiting only while the socket's send buffer is full.
    pub async fn send(&mut self, socket: &UdpSocket) {
        let mut from = 0;
        while from < self.received {
            match socket.try_io(Interest::WRITABLE, || {
                self.sendmmsg(socket.as_raw_fd(), from)
            }) {
                Ok(next) => from = next,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if let Err(e) = socket.writable().await {
                        debug!(error = %e, "DNS UDP socket not writable");
                        return;
                    }
                }
                Err(e) => {
                    // The first reply failed (its destination is
                    // unreachable, say): skip it, send the rest.
                    debug!(error = %e, "could not send a DNS response");
                    from = self.next_reply(from) + 1;
                }
            }
        }
    }

    /// The index of the first reply at or after `from` to send (or the
    /// batch length).
    fn next_reply(&self, from: usize) -> usize {
        (from..self.received)
            .find(|&i| !self.replies[i].is_empty())
            .unwrap_or(self.received)
    }

    /// Sends the replies from `from` on; returns the index to go on from.
    fn sendmmsg(&mut self, fd: RawFd, from: usize) -> io::Result<usize> {
        // SAFETY: as in `recvmmsg`.
        let mut iov: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        // Which slot each header sends.
        let mut slots = [0usize; BATCH];
        let mut count = 0;
        for i in from..self.received {
            if self.replies[i].is_empty() {
                continue;
            }
            iov[count] = libc::iovec {
                iov_base: self.replies[i].as_mut_ptr().cast(),
                iov_len: self.replies[i].len(),
            };
            let header = &mut headers[count].msg_hdr;
            header.msg_name = (&raw mut self.addrs[i]).cast();
            header.msg_namelen = self.addr_lens[i];
            header.msg_iov = &raw mut iov[count];
            header.msg_iovlen = 1;
            slots[count] = i;
            count += 1;
        }
        if count == 0 {
            return Ok(self.received);
        }
        // SAFETY: the first `count` headers point at live replies and
        // addresses owned by `self` and at iovecs in this frame.
        let sent = unsafe { libc::sendmmsg(fd, headers.as_mut_ptr(), count as libc::c_uint, 0) };
        let Ok(sent) = usize::try_from(sent) else {
            return Err(io::Error::last_os_error());
        };
        Ok(if sent >= count {
            self.received
        } else {
            slots[sent]
        })
    }
}

/// The address the kernel filled in, for IPv4 and IPv6.
fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, and
            // sockaddr_storage is large and aligned enough for it.
            let v4 =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)),
                u16::from_be(v4.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let v6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(v6.sin6_addr.s6_addr),
                u16::from_be(v6.sin6_port),
                v6.sin6_flowinfo,
                v6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_batch_answers_each_query_to_its_own_source_and_skips_empty_replies() {
        let server = UdpSocket::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = server.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let mut clients = Vec::new();
        for i in 0..5u8 {
            let client = UdpSocket::bind("127.0.0.1:0")
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            client
                .send_to(&[i; 3], addr)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            clients.push(client);
        }
        let mut batch = Batch::new(2, 16);
        let mut got = 0;
        while got < 5 {
            server.readable().await.unwrap_or_else(|e| panic!("{e}"));
            let Ok(n) = batch.receive(&server) else {
                continue;
            };
            for i in 0..n {
                let Slot { query, src, reply } = batch.slot(i);
                // Cut to the buffer's two bytes.
                assert_eq!(query.len(), 2);
                let src = src.unwrap_or_else(|| panic!("no source"));
                let client = clients
                    .iter()
                    .position(|c| c.local_addr().ok() == Some(src));
                assert_eq!(client, Some(usize::from(query[0])));
                // Client 3 gets no reply.
                if query[0] != 3 {
                    reply.extend_from_slice(&[query[0], 0xff]);
                }
            }
            batch.send(&server).await;
            got += n;
        }
        for (i, client) in clients.iter().enumerate() {
            let mut buf = [0u8; 8];
            let received = tokio::time::timeout(
                Duration::from_millis(if i == 3 { 200 } else { 5000 }),
                client.recv(&mut buf),
            )
            .await;
            match received {
                Ok(Ok(n)) => {
                    assert_ne!(i, 3, "a reply was sent for an empty slot");
                    assert_eq!(buf[..n], [i as u8, 0xff]);
                }
                _ => assert_eq!(i, 3, "client {i} got no reply"),
            }
        }
        assert!(matches!(batch.receive(&server), Err(e) if e.kind() == ErrorKind::WouldBlock));
    }
}
