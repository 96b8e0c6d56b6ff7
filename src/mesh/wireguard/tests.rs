//! The device through its Rust API, each test on a thread with a network
//! namespace of its own (so its TUN interface and UDP port touch nothing
//! else), with `wg` as the operator. Needs root; fails saying so otherwise.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Runs `test` on a fresh thread moved into a new network namespace, in a
/// single-threaded runtime (so every socket it opens lives there), with a
/// unique interface name.
fn in_private_netns<F, Fut>(test: F)
where
    F: FnOnce(String) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!(
            "this test needs root and network namespaces (unshare CLONE_NEWNET, /dev/net/tun); run it as root"
        );
    }
    let name = format!(
        "mkt{}x{}",
        std::process::id() % 100_000,
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let joined = std::thread::spawn(move || {
        // SAFETY: unshare(2) affects only this thread, which nothing else
        // shares state with yet.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            panic!(
                "this test needs root and network namespaces: unshare(CLONE_NEWNET) failed: {}",
                std::io::Error::last_os_error()
            );
        }
        run_ok(&["ip", "link", "set", "lo", "up"]);
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => panic!("runtime: {e}"),
        };
        runtime.block_on(test(name));
    })
    .join();
    if let Err(panic) = joined {
        std::panic::resume_unwind(panic);
    }
}

fn run(args: &[&str]) -> std::process::Output {
    match Command::new(args[0]).args(&args[1..]).output() {
        Ok(out) => out,
        Err(e) => panic!("{}: {e}", args.join(" ")),
    }
}

fn run_ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `wg ARGS`, which must succeed, run off the runtime's only thread (the
/// device answers its socket on that thread).
async fn wg(args: &[&str]) -> String {
    let out = tokio::process::Command::new("wg").args(args).output().await;
    let out = match out {
        Ok(out) => out,
        Err(e) => panic!("wg {}: {e}", args.join(" ")),
    };
    assert!(
        out.status.success(),
        "wg {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip(text: &str) -> IpAddr {
    match text.parse() {
        Ok(ip) => ip,
        Err(e) => panic!("{text}: {e}"),
    }
}

fn addr(text: &str) -> SocketAddr {
    match text.parse() {
        Ok(a) => a,
        Err(e) => panic!("{text}: {e}"),
    }
}

async fn start(interface: &str) -> Device {
    let config = DeviceConfig {
        interface: interface.to_string(),
        listen_port: 0,
        private_key: PrivateKey::generate(),
        addresses: vec![(ip("198.51.100.1"), 24), (ip("2001:db8:1::1"), 64)],
    };
    match Device::start(&config).await {
        Ok(d) => d,
        Err(e) => panic!("start {interface}: {e}"),
    }
}

fn peer(allowed: &str, endpoint: Option<&str>) -> PeerConfig {
    PeerConfig {
        public_key: PrivateKey::generate().public_key(),
        endpoint: endpoint.map(addr),
        allowed_ips: vec![(ip(allowed), 32)],
        persistent_keepalive: Some(25),
    }
}

async fn keys(device: &Device) -> Vec<PublicKey> {
    match device.peer_stats().await {
        Ok(stats) => stats.into_iter().map(|s| s.public_key).collect(),
        Err(e) => panic!("peer_stats: {e}"),
    }
}

#[test]
fn set_peers_manages_its_own_peers_and_leaves_the_operators_alone() {
    in_private_netns(|name| async move {
        let device = start(&name).await;
        let a = peer("198.51.100.2", Some("192.0.2.2:51880"));
        let b = peer("198.51.100.3", None);
        let set = device.set_peers(&[a.clone(), b.clone()]).await;
        assert!(set.is_ok(), "{set:?}");

        // An operator adds a peer of their own with wg.
        let operator = PrivateKey::generate().public_key();
        wg(&[
            "set",
            &name,
            "peer",
            &operator.to_string(),
            "allowed-ips",
            "198.51.100.9/32",
        ])
        .await;

        // The node table changes: b is gone, a moved.
        let mut moved = a.clone();
        moved.endpoint = Some(addr("192.0.2.22:51880"));
        let set = device.set_peers(std::slice::from_ref(&moved)).await;
        assert!(set.is_ok(), "{set:?}");
        let mut expected = vec![a.public_key, operator];
        expected.sort();
        assert_eq!(keys(&device).await, expected);
        let stats = device.peer_stats().await.unwrap_or_default();
        let a_now = stats.iter().find(|s| s.public_key == a.public_key);
        assert_eq!(a_now.and_then(|s| s.endpoint), moved.endpoint);
        assert_eq!(a_now.and_then(|s| s.last_handshake), None);

        // wg sees the same thing.
        let dump = wg(&["show", &name, "dump"]).await;
        assert!(
            dump.contains(&format!(
                "{}\t(none)\t192.0.2.22:51880\t198.51.100.2/32",
                a.public_key
            )),
            "{dump}"
        );
        assert!(dump.contains(&operator.to_string()), "{dump}");
        assert!(!dump.contains(&b.public_key.to_string()), "{dump}");

        // Emptying the node table removes only managed peers.
        let set = device.set_peers(&[]).await;
        assert!(set.is_ok(), "{set:?}");
        assert_eq!(keys(&device).await, vec![operator]);
        device.stop().await;
    });
}

#[test]
fn invalid_peer_lists_change_nothing_and_name_the_peer() {
    in_private_netns(|name| async move {
        let device = start(&name).await;
        let good = peer("198.51.100.2", None);
        assert!(device.set_peers(std::slice::from_ref(&good)).await.is_ok());

        let outside = peer("192.0.2.7", None);
        let err = device
            .set_peers(&[good.clone(), outside.clone()])
            .await
            .map_err(|e| e.to_string());
        assert_eq!(
            err,
            Err(format!(
                "{name}: peer {} has allowed IP 192.0.2.7/32 outside the mesh prefixes 198.51.100.1/24, 2001:db8:1::1/64; the device routes only the mesh",
                outside.public_key
            ))
        );
        let twice = device
            .set_peers(&[good.clone(), good.clone()])
            .await
            .map_err(|e| e.to_string());
        assert_eq!(
            twice,
            Err(format!("{name}: peer {} is listed twice", good.public_key))
        );
        let mut bad_len = peer("198.51.100.5", None);
        bad_len.allowed_ips = vec![(ip("198.51.100.5"), 33)];
        assert!(device.set_peers(&[bad_len]).await.is_err());
        let own = PeerConfig {
            public_key: device.public_key(),
            ..peer("198.51.100.6", None)
        };
        assert!(device.set_peers(&[own]).await.is_err());
        assert_eq!(keys(&device).await, vec![good.public_key]);
        device.stop().await;
    });
}

#[test]
fn garbage_on_the_udp_port_and_the_uapi_socket_does_not_stop_the_device() {
    in_private_netns(|name| async move {
        let device = start(&name).await;
        let port = device.listen_port();
        let known = peer("198.51.100.2", Some("192.0.2.2:51880"));
        assert!(device.set_peers(std::slice::from_ref(&known)).await.is_ok());
        let socket = match UdpSocket::bind("127.0.0.1:0") {
            Ok(s) => s,
            Err(e) => panic!("bind: {e}"),
        };
        // Every WireGuard message type with random bodies, truncated and
        // oversized, plus empty datagrams.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for n in 0..2000usize {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = [0, 1, 4, 32, 148, 92, 64, 1500][n % 8] + (state % 7) as usize;
            let mut packet: Vec<u8> = (0..len).map(|i| (state >> (i % 57)) as u8).collect();
            if let Some(first) = packet.first_mut() {
                *first = (n % 5) as u8;
            }
            let _ = socket.send_to(&packet, ("127.0.0.1", port));
        }
        for junk in [
            "get=2\n\n",
            "set=1\nprivate_key=zz\n\n",
            "set=1\npublic_key=00\nallowed_ip=300.1.1.1/99\n\n",
            "\u{0}\u{1}\u{2}\n\n",
            "set=1\nlisten_port=-1\n\n",
        ] {
            let path = socket_path(&name);
            if let Ok(mut stream) = std::os::unix::net::UnixStream::connect(&path) {
                let _ = std::io::Write::write_all(&mut stream, junk.as_bytes());
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        // Still answering both ways, with its configuration intact.
        assert_eq!(keys(&device).await, vec![known.public_key]);
        let dump = wg(&["show", &name, "dump"]).await;
        assert!(dump.contains(&known.public_key.to_string()), "{dump}");
        device.stop().await;
    });
}

#[test]
fn stop_removes_the_interface_and_the_socket() {
    in_private_netns(|name| async move {
        let device = start(&name).await;
        let path = socket_path(&name);
        assert!(path.exists());
        assert!(run(&["ip", "link", "show", &name]).status.success());
        let routes = run_ok(&["ip", "route", "show", "dev", &name]);
        assert_eq!(
            routes.trim(),
            "198.51.100.0/24 proto kernel scope link src 198.51.100.1"
        );
        device.stop().await;
        device.stop().await; // twice is harmless
        assert!(!path.exists(), "{} outlived the device", path.display());
        assert!(matches!(
            device.peer_stats().await,
            Err(WireGuardError::Stopped { .. })
        ));
        drop(device);
        // The interface goes with the last handle on the TUN descriptor.
        let mut gone = false;
        for _ in 0..50 {
            if !run(&["ip", "link", "show", &name]).status.success() {
                gone = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(gone, "{name} outlived the device");
    });
}
