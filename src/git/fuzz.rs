//! Generated input for what the git endpoint reads from a client: the SSH
//! exec line, pkt-line framing with receive-pack's command lines, and the
//! pack that follows (header, entry headers, zlib streams, trailer, as
//! the receive path indexes it). None may panic.

#![cfg(test)]

use std::io::{Cursor, Write};

use super::pktline::{Pkt, read_pkt};
use super::{exec, receive};
use crate::fuzz::{self, input};

const ZERO: &str = "0000000000000000000000000000000000000000";
const ONE: &str = "8ab686eafeb1f44702738c8b0f24f2567c36da6d";

#[test]
fn generated_exec_lines_never_panic() {
    let seeds: Vec<Vec<u8>> = [
        "git-receive-pack '/site.git'",
        "git-upload-pack 'site'",
        "git-receive-pack /site",
        "git receive-pack '/a/b.git'",
        "git-upload-pack '../etc'",
        "status --json",
        "deploys example.com",
        "rollback example.com 0123456789ab",
        "keys add ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test",
        "keys remove SHA256:abc",
        "node health london down",
        "repos",
        "join-token",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let dictionary: [&[u8]; 8] = [b"'", b"\"", b"/", b"..", b".git", b" ", b"\\", b"\0"];
    fuzz::run(
        "ssh exec line",
        0xe8ec,
        |rng| input::generate(rng, &seeds, &dictionary),
        |raw| {
            // As the SSH endpoint turns the request into text.
            let line = String::from_utf8_lossy(raw);
            let _ = exec::parse(&line);
        },
    );
}

/// `data` framed as one pkt-line.
fn pkt(data: &str) -> Vec<u8> {
    let mut out = format!("{:04x}", data.len() + 4).into_bytes();
    out.extend_from_slice(data.as_bytes());
    out
}

#[test]
fn generated_pkt_lines_never_panic() {
    let mut commands = pkt(&format!(
        "{ZERO} {ONE} refs/heads/main\0report-status side-band-64k atomic agent=git/2.47\n"
    ));
    commands.extend(pkt(&format!("{ONE} {ZERO} refs/heads/old\n")));
    commands.extend(b"0000");
    let seeds = vec![
        commands,
        b"0000".to_vec(),
        b"0001".to_vec(),
        pkt("want 8ab686eafeb1f44702738c8b0f24f2567c36da6d multi_ack\n"),
        pkt("shallow 8ab686eafeb1f44702738c8b0f24f2567c36da6d"),
        pkt("done\n"),
    ];
    let dictionary: [&[u8]; 6] = [b"0000", b"0001", b"0004", b"ffff", b"\0", ZERO.as_bytes()];
    fuzz::run(
        "pkt-line and commands",
        0x9471,
        |rng| input::generate(rng, &seeds, &dictionary),
        |raw| {
            let mut cursor = Cursor::new(raw);
            for _ in 0..64 {
                match read_pkt(&mut cursor) {
                    Ok(Some(Pkt::Data(data))) => {
                        let line = data.split(|b| *b == 0).next().unwrap_or(&[]);
                        let line = line.strip_suffix(b"\n").unwrap_or(line);
                        let _ = receive::parse_command(line);
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        },
    );
}

/// A pack holding `objects` (type number, bytes) as whole objects, with
/// its SHA-1 trailer.
fn pack(objects: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = b"PACK".to_vec();
    out.extend_from_slice(&2u32.to_be_bytes());
    out.extend_from_slice(&(objects.len() as u32).to_be_bytes());
    for (kind, data) in objects {
        let mut size = data.len();
        let mut first = (kind << 4) | (size & 0x0f) as u8;
        size >>= 4;
        if size > 0 {
            first |= 0x80;
        }
        out.push(first);
        while size > 0 {
            let mut byte = (size & 0x7f) as u8;
            size >>= 7;
            if size > 0 {
                byte |= 0x80;
            }
            out.push(byte);
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        let _ = z.write_all(data);
        out.extend(z.finish().unwrap_or_default());
    }
    let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
    hasher.update(&out);
    if let Ok(id) = hasher.try_finalize() {
        out.extend_from_slice(id.as_bytes());
    }
    out
}

#[test]
fn generated_packs_never_panic() {
    let tree = b"100644 index.html\0\x8a\xb6\x86\xea\xfe\xb1\xf4\x47\x02\x73\x8c\x8b\x0f\x24\xf2\x56\x7c\x36\xda\x6d";
    let commit = format!(
        "tree {ONE}\nauthor A <a@example.com> 0 +0000\ncommitter A <a@example.com> 0 +0000\n\nm\n"
    );
    let seeds = vec![
        pack(&[(3, b"hello\n")]),
        pack(&[(3, b"hello\n"), (2, tree), (1, commit.as_bytes())]),
        pack(&[(3, &[b'x'; 300])]),
        pack(&[]),
    ];
    let dictionary: [&[u8]; 4] = [b"PACK", b"\x78\x9c", b"\x60", b"\x70"];
    fuzz::run(
        "pack input",
        0x9acc,
        |rng| input::generate(rng, &seeds, &dictionary),
        |raw| {
            let Ok(entries) = gix_pack::data::input::BytesToEntriesIter::new_from_header(
                std::io::BufReader::new(Cursor::new(raw)),
                gix_pack::data::input::Mode::Verify,
                gix_pack::data::input::EntryDataMode::Crc32,
                gix::hash::Kind::Sha1,
            ) else {
                return;
            };
            for entry in entries.take(1024) {
                if entry.is_err() {
                    break;
                }
            }
        },
    );
}
