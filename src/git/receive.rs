//! `git-receive-pack`: the server side of `git push`, protocol v0.
//!
//! Advertise refs and capabilities, read the command list, index the pack
//! into a quarantine (thin packs completed from the repository), then hand
//! the commands to `push` for checks, hooks, deploys and the ref
//! transaction, and report per-ref status.

use std::collections::HashSet;
use std::io::{BufReader, BufWriter, Read, Write};

use gix::ObjectId;

use super::pack::{ReceivedPack, receive_pack_into};
use super::pktline::{Output, Pkt, read_pkt, text, write_advertisement, write_flush, write_pkt};
use super::push::{self, Command, Update};
use super::quarantine::Quarantine;
use super::repo::Repo;
use super::{GitError, GitService, RepoName};

/// What this server offers to `git push`.
fn capabilities() -> String {
    format!(
        "report-status delete-refs side-band-64k quiet atomic ofs-delta object-format=sha1 agent=makiatto/{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// Serves one `git-receive-pack` session on `input`/`output`.
pub fn serve(
    service: &GitService,
    name: &RepoName,
    input: &mut dyn Read,
    output: &mut dyn Write,
) -> Result<(), GitError> {
    let (repo, created) = Repo::open_or_create(&service.repos, name)?;
    if created {
        service.record_repo(name)?;
    }
    let mut out = Output::new(BufWriter::with_capacity(64 * 1024, output));
    advertise(&repo, out.raw())?;
    out.flush()?;

    let mut input = BufReader::with_capacity(64 * 1024, input);
    let mut commands = Vec::new();
    let mut caps: HashSet<String> = HashSet::new();
    loop {
        match read_pkt(&mut input)? {
            None => return Ok(()), // nothing to push: the client hung up
            Some(Pkt::Flush) => break,
            Some(Pkt::Delim) => return Err(GitError::Protocol("unexpected delimiter".into())),
            Some(Pkt::Data(line)) => {
                let line = text(&line);
                let (command, rest) = match line.iter().position(|b| *b == 0) {
                    Some(nul) => (&line[..nul], Some(&line[nul + 1..])),
                    None => (line, None),
                };
                if let Some(rest) = rest {
                    caps.extend(
                        String::from_utf8_lossy(rest)
                            .split_whitespace()
                            .map(str::to_string),
                    );
                }
                commands.push(parse_command(command)?);
            }
        }
    }
    if commands.is_empty() {
        return Ok(());
    }
    out.use_sideband(caps.contains("side-band-64k"), caps.contains("quiet"));
    let atomic = caps.contains("atomic");

    let mut unpack: Result<Option<ReceivedPack>, String> = Ok(None);
    let mut quarantine = None;
    if commands.iter().any(|c| !c.new.is_null()) {
        unpack = Quarantine::create(&repo)
            .and_then(|q| {
                let pack = receive_pack_into(&repo, &q.pack_dir(), &mut input)?;
                quarantine = Some(q);
                Ok(pack)
            })
            .map_err(|e| {
                let _ = out.message(&format!("error: cannot store the pushed objects: {e}"));
                e.to_string()
            });
        if let Ok(Some(pack)) = &unpack {
            out.progress(&format!("received {} objects", pack.index.num_objects()))?;
            tracing::info!(repo = %name, objects = pack.index.num_objects(), "pack indexed");
        }
    }

    // Until a ref takes them, the pushed objects are seen only through
    // the quarantine.
    let view = match &quarantine {
        Some(q) => Some(q.view(&repo)?),
        None => None,
    };
    let updates = match &unpack {
        Ok(pack) => push::apply(
            service,
            view.as_ref().unwrap_or(&repo),
            &commands,
            pack.as_ref(),
            quarantine.as_ref(),
            atomic,
            &mut out,
        )?,
        Err(_) => commands
            .into_iter()
            .map(|c| Update::failed(c, "unpacker error"))
            .collect(),
    };

    if caps.contains("report-status") {
        let mut report = Vec::new();
        match &unpack {
            Ok(_) => write_pkt(&mut report, b"unpack ok\n")?,
            Err(e) => write_pkt(&mut report, format!("unpack {}\n", one_line(e)).as_bytes())?,
        }
        for update in &updates {
            let name = &update.command.name;
            let line = match &update.status {
                Ok(()) => format!("ok {name}\n"),
                Err(reason) => format!("ng {name} {}\n", one_line(reason)),
            };
            write_pkt(&mut report, line.as_bytes())?;
        }
        write_flush(&mut report)?;
        out.data(&report)?;
    }
    if out.is_sideband() {
        write_flush(out.raw())?;
    }
    out.flush()?;
    Ok(())
}

fn one_line(text: &str) -> String {
    text.replace('\n', " ")
}

/// Writes the ref advertisement: every branch and tag, capabilities on the
/// first line (or on a `capabilities^{}` line when there are no refs).
fn advertise(repo: &Repo, w: &mut impl Write) -> Result<(), GitError> {
    write_advertisement(w, &repo.refs()?, &capabilities())?;
    Ok(())
}

/// `<old> <new> <ref>`.
pub(super) fn parse_command(line: &[u8]) -> Result<Command, GitError> {
    let line = std::str::from_utf8(line)
        .map_err(|_| GitError::Protocol("a command line is not UTF-8".into()))?;
    let mut parts = line.splitn(3, ' ');
    let (Some(old), Some(new), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(GitError::Protocol(format!("bad command line {line:?}")));
    };
    let id = |hex: &str| {
        ObjectId::from_hex(hex.as_bytes())
            .map_err(|_| GitError::Protocol(format!("bad object id {hex:?}")))
    };
    Ok(Command {
        old: id(old)?,
        new: id(new)?,
        name: name.to_string(),
    })
}
