//! Site builds on push, with the real `hugo`, `jekyll` and `bwrap`: a Hugo
//! or Jekyll site pushed with `[build]` is built on the receiving node and served
//! (previews too); the build's output reaches the pusher while it runs;
//! failed, timed-out, over-limit, offline and escaping builds are refused
//! with the reason while the served revision stays; `makiatto dev --site`
//! builds too. Needs root (builds then run as `nobody`) and user
//! namespaces; the cluster case is in `build_cluster`.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::git::{Client, commit_all, init_repo, repo_url};
use crate::support::{Node, temp_dir, write_file, write_tree};

const HOST: &str = "build.example";

/// A Hugo site with no theme: its own two layouts and one page.
pub fn hugo_site(dir: &Path, config: &str, page: &str) {
    write_tree(
        dir,
        &[
            ("makiatto.toml", config),
            (
                "hugo.toml",
                "baseURL = \"http://build.example/\"\ntitle = \"Built\"\ndisableKinds = [\"taxonomy\", \"term\"]\n",
            ),
            (
                "layouts/index.html",
                "<html><body><h1>{{ .Site.Title }}</h1>{{ range .Site.RegularPages }}<a href=\"{{ .RelPermalink }}\">{{ .Title }}</a>{{ end }}</body></html>\n",
            ),
            (
                "layouts/_default/single.html",
                "<html><body><h1>{{ .Title }}</h1>{{ .Content }}</body></html>\n",
            ),
        ],
    );
    write_file(
        dir,
        "content/hello.md",
        format!("---\ntitle: \"Hello\"\n---\n{page}\n"),
    );
}

/// A dev node authorising `client`, with `[build]` limits from `limits`.
fn node_with_limits(client: &Client, limits: &str) -> Node {
    let config = client.scratch().join("node.toml");
    std::fs::write(&config, format!("name = \"dev\"\n\n[build]\n{limits}"))
        .expect("write node.toml");
    Node::start_bare(&[
        OsStr::new("--authorized-key"),
        client.public_key.as_os_str(),
        OsStr::new("--config"),
        config.as_os_str(),
    ])
}

fn body(node: &Node, host: &str, path: &str) -> (u16, String) {
    let reply = node.get_with(path, &[("host", host)]);
    (reply.status, reply.text())
}

fn head(client: &Client, work: &Path) -> String {
    client
        .git_ok(work, &["rev-parse", "HEAD"])
        .stdout
        .trim()
        .to_string()
}

#[test]
fn a_hugo_site_is_built_on_push_and_served_with_its_preview_env_and_cache() {
    let client = Client::new();
    let node = client.start_node();
    let work = client.scratch().join("site");
    init_repo(&client, &work);
    hugo_site(
        &work,
        &format!(
            "[[domain]]\nname = \"{HOST}\"\n\n[build]\ncommand = \"hugo && sh env.sh\"\noutput = \"public\"\nenv = {{ GREETING = \"hello\" }}\n"
        ),
        "Hello *world* from main",
    );
    // What the build saw, written into the site; the cache counts builds.
    write_file(
        &work,
        "env.sh",
        "echo \"$MAKIATTO_BRANCH|$MAKIATTO_COMMIT|$MAKIATTO_DOMAIN|$MAKIATTO_URL|$CI|$GREETING|$MAKIATTO_CACHE_DIR\" > public/env.txt\n\
         echo build >> \"$MAKIATTO_CACHE_DIR/count\"\n\
         wc -l < \"$MAKIATTO_CACHE_DIR/count\" | tr -d ' ' > public/builds.txt\n",
    );
    commit_all(&client, &work, "hugo site");
    let url = repo_url(&node, "site");
    let out = client.git_ok(&work, &["push", &url, "main"]);
    assert!(
        out.stderr.contains("remote: building main") && out.stderr.contains("remote: built main"),
        "the push does not report the build: {}",
        out.describe()
    );
    // Hugo's own summary reached the pusher.
    assert!(
        out.stderr.contains("remote: Total in"),
        "{}",
        out.describe()
    );

    let (status, page) = body(&node, HOST, "/hello/");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<h1>Hello</h1>") && page.contains("<em>world</em> from main"),
        "{page}"
    );
    let (_, index) = body(&node, HOST, "/");
    assert!(index.contains("<a href=\"/hello/\">Hello</a>"), "{index}");
    // The sources are not served: only the build output is.
    assert_eq!(body(&node, HOST, "/hugo.toml").0, 404);

    let commit = head(&client, &work);
    let port = node.addr.port();
    assert_eq!(
        body(&node, HOST, "/env.txt").1.trim(),
        format!("main|{commit}|{HOST}|http://{HOST}:{port}/|true|hello|/build/cache")
    );
    assert_eq!(body(&node, HOST, "/builds.txt").1.trim(), "1");

    // deploys shows the build; build-log prints it.
    let deploys = node.admin(&["deploys", HOST]);
    assert!(deploys.success(), "{}", deploys.describe());
    assert!(deploys.stdout.contains("built in "), "{}", deploys.stdout);
    let log = node.admin(&["build-log", "site"]);
    assert!(log.success(), "{}", log.describe());
    assert!(
        log.stdout
            .starts_with(&format!("build of main ({}), ", &commit[..12]))
            && log.stdout.contains(": built in ")
            && log.stdout.contains("Total in"),
        "{}",
        log.stdout
    );

    // A preview branch is built and served at its preview host; the cache
    // dir was kept from the first build.
    client.git_ok(&work, &["checkout", "-q", "-b", "draft"]);
    hugo_site(
        &work,
        &format!(
            "[[domain]]\nname = \"{HOST}\"\n\n[build]\ncommand = \"hugo && sh env.sh\"\noutput = \"public\"\nenv = {{ GREETING = \"hello\" }}\n"
        ),
        "Hello from the draft",
    );
    commit_all(&client, &work, "draft");
    client.git_ok(&work, &["push", &url, "draft"]);
    let preview = format!("draft.preview.{HOST}");
    let (status, page) = body(&node, &preview, "/hello/");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Hello from the draft"), "{page}");
    let draft = head(&client, &work);
    assert_eq!(
        body(&node, &preview, "/env.txt").1.trim(),
        format!("draft|{draft}|{preview}|http://{preview}:{port}/|true|hello|/build/cache")
    );
    assert_eq!(body(&node, &preview, "/builds.txt").1.trim(), "2");
    // Production is untouched by the preview.
    assert!(body(&node, HOST, "/hello/").1.contains("from main"));
}

/// A Jekyll site with its own layout and no theme gem, so it builds
/// offline with Debian's `jekyll`.
fn jekyll_site(dir: &Path, page: &str) {
    write_tree(
        dir,
        &[
            (
                "makiatto.toml",
                &format!(
                    "[[domain]]\nname = \"{HOST}\"\n\n[build]\ncommand = \"jekyll build\"\noutput = \"_site\"\n"
                ),
            ),
            ("_config.yml", "title: Jekyll Built\nmarkdown: kramdown\n"),
            (
                "_layouts/default.html",
                "<html><body><h1>{{ site.title }}</h1>{{ content }}</body></html>\n",
            ),
            (
                "index.md",
                &format!("---\nlayout: default\ntitle: Home\n---\n{page}\n"),
            ),
        ],
    );
}

#[test]
fn a_jekyll_site_is_built_on_push_and_its_preview_too() {
    let client = Client::new();
    let node = client.start_node();
    let work = client.scratch().join("site");
    init_repo(&client, &work);
    jekyll_site(&work, "Hello *world* from main");
    commit_all(&client, &work, "jekyll site");
    let url = repo_url(&node, "site");
    let out = client.git_ok(&work, &["push", &url, "main"]);
    // Jekyll's own summary reached the pusher.
    assert!(
        out.stderr.contains("remote: built main") && out.stderr.contains("Generating..."),
        "{}",
        out.describe()
    );
    let (status, page) = body(&node, HOST, "/");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<h1>Jekyll Built</h1>") && page.contains("<em>world</em> from main"),
        "{page}"
    );
    assert_eq!(body(&node, HOST, "/_config.yml").0, 404);

    client.git_ok(&work, &["checkout", "-q", "-b", "draft"]);
    jekyll_site(&work, "Hello from the draft");
    commit_all(&client, &work, "draft");
    client.git_ok(&work, &["push", &url, "draft"]);
    let (status, page) = body(&node, &format!("draft.preview.{HOST}"), "/");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Hello from the draft"), "{page}");
    assert!(body(&node, HOST, "/").1.contains("from main"));
}

#[test]
fn build_output_reaches_the_pusher_while_the_build_runs() {
    let client = Client::new();
    let node = client.start_node();
    let work = client.scratch().join("site");
    init_repo(&client, &work);
    // The build cannot write its last line before the test, having read
    // the first one, creates `go` in the build's cache directory.
    write_tree(
        &work,
        &[
            (
                "makiatto.toml",
                &format!(
                    "[[domain]]\nname = \"{HOST}\"\n\n[build]\ncommand = \"sh build.sh\"\noutput = \"public\"\n"
                ),
            ),
            (
                "build.sh",
                "echo first build line\n\
                 i=0\n\
                 while [ ! -e \"$MAKIATTO_CACHE_DIR/go\" ]; do\n\
                   i=$((i + 1)); [ $i -gt 1200 ] && { echo never released; exit 3; }\n\
                   sleep 0.1\n\
                 done\n\
                 mkdir -p public && echo streamed > public/index.html\n\
                 echo last build line\n",
            ),
        ],
    );
    commit_all(&client, &work, "slow build");
    let mut push = Command::new("git");
    push.current_dir(&work)
        .args(["push", "--progress", &repo_url(&node, "live"), "main"])
        .env("GIT_SSH_COMMAND", client.ssh_command())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", client.scratch())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = push.spawn().expect("spawn git push");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let go = node.data.join("builds/cache/live/go");
    for line in lines.by_ref() {
        let line = line.expect("read git's stderr");
        let first = line.contains("remote: first build line");
        seen.push(line);
        if first {
            // The build is still waiting: its last line is not written yet.
            assert!(!seen.iter().any(|l| l.contains("last build line")));
            std::fs::write(&go, "").expect("release the build");
            break;
        }
    }
    assert!(go.exists(), "the first build line never arrived: {seen:#?}");
    seen.extend(lines.map_while(Result::ok));
    let status = child.wait().expect("wait for git push");
    assert!(status.success(), "push failed: {seen:#?}");
    assert!(
        seen.iter().any(|l| l.contains("remote: last build line")),
        "{seen:#?}"
    );
    assert_eq!(body(&node, HOST, "/").1.trim(), "streamed");
}

/// Pushes the tree in `work` with `command` as its build; the push must be
/// refused with `reason` among the remote lines.
fn refused(client: &Client, work: &Path, url: &str, build: &str, reason: &str) -> String {
    write_file(
        work,
        "makiatto.toml",
        format!("[[domain]]\nname = \"{HOST}\"\n\n[build]\n{build}\noutput = \"public\"\n"),
    );
    commit_all(client, work, build);
    let out = client.git(work, &["push", url, "main"]);
    assert!(
        !out.success(),
        "the build {build:?} was accepted: {}",
        out.describe()
    );
    assert!(
        out.stderr
            .contains("remote: error: build of main refused: ")
            && out.stderr.contains(reason),
        "the build {build:?} was not refused saying {reason:?}: {}",
        out.describe()
    );
    assert!(
        out.stderr
            .contains("[remote rejected] main -> main (build failed)"),
        "{}",
        out.describe()
    );
    out.stderr
}

#[test]
fn failing_slow_offline_oversized_and_escaping_builds_are_refused_and_the_site_stays() {
    let client = Client::new();
    let node = node_with_limits(&client, "timeout_secs = 3\nmax_output_mb = 1\n");
    let work = client.scratch().join("site");
    init_repo(&client, &work);
    write_file(
        &work,
        "makiatto.toml",
        format!(
            "[[domain]]\nname = \"{HOST}\"\n\n[build]\ncommand = \"mkdir -p public && echo v1 > public/index.html\"\noutput = \"public\"\n"
        ),
    );
    commit_all(&client, &work, "v1");
    let url = repo_url(&node, "site");
    client.git_ok(&work, &["push", &url, "main"]);
    let served = node.get_with("/", &[("host", HOST)]);
    assert_eq!(served.text().trim(), "v1");
    let revision = served.header("x-makiatto-revision").map(str::to_string);
    let accepted = head(&client, &work);
    let data = node.data.display().to_string();
    let probe = node.url("/");

    let cases: Vec<(String, &str, String)> = vec![
        (
            "command = \"echo compiling; echo broken >&2; exit 3\"".into(),
            "the build failed (exit status 3)",
            "  broken".into(),
        ),
        (
            "command = \"echo waiting; sleep 60\"".into(),
            "the build ran past its time limit of 3 s",
            "  waiting".into(),
        ),
        (
            format!("command = \"curl -sS -m 5 -o public/x {probe}\""),
            "it ran without network access: if it needs the network, set network = true in [build]",
            "curl: (7)".into(),
        ),
        (
            "command = \"mkdir -p public && head -c 2097152 /dev/zero > public/big\"".into(),
            "the build wrote a file over the limit of 1 MiB",
            String::new(),
        ),
        (
            "command = \"mkdir -p public && echo x > /etc/makiatto-build-escape\"".into(),
            "the build failed",
            "Read-only file system".into(),
        ),
        (
            format!("command = \"mkdir -p public && echo x > {data}/escaped\""),
            "the build failed",
            "Directory nonexistent".into(),
        ),
        (
            format!("command = \"mkdir -p public && cat {data}/state.sqlite > public/stolen\""),
            "the build failed",
            "No such file or directory".into(),
        ),
        (
            "command = \"makiatto-no-such-generator build\"".into(),
            "command \"makiatto-no-such-generator\" is not installed on this node; the node's operator installs it",
            String::new(),
        ),
        (
            "command = \"echo no output here\"".into(),
            "wrote no directory \"public\"",
            String::new(),
        ),
    ];
    for (build, reason, tail) in &cases {
        let stderr = refused(&client, &work, &url, build, reason);
        assert!(
            stderr.contains(tail.as_str()),
            "no {tail:?} in the log tail of {build:?}: {stderr}"
        );
        // Nothing moved: the same revision serves the same bytes, the ref
        // stayed, and nothing escaped the sandbox.
        let now = node.get_with("/", &[("host", HOST)]);
        assert_eq!(now.text().trim(), "v1", "after {build:?}");
        assert_eq!(
            now.header("x-makiatto-revision").map(str::to_string),
            revision
        );
        let remote = client.git_ok(&work, &["ls-remote", &url, "refs/heads/main"]);
        assert!(
            remote.stdout.starts_with(&accepted),
            "after {build:?}: {}",
            remote.stdout
        );
    }
    assert!(!Path::new("/etc/makiatto-build-escape").exists());
    assert!(!node.data.join("escaped").exists());

    // deploys names the refused build; the network opt-in lets the same
    // fetch through.
    let deploys = node.admin(&["deploys", HOST]);
    assert!(
        deploys.stdout.contains("last build refused"),
        "{}",
        deploys.stdout
    );
    write_file(
        &work,
        "makiatto.toml",
        format!(
            "[[domain]]\nname = \"{HOST}\"\n\n[build]\ncommand = \"mkdir -p public && curl -sS -m 5 -o public/index.html {probe} && echo online > public/net.txt\"\noutput = \"public\"\nnetwork = true\n"
        ),
    );
    commit_all(&client, &work, "online");
    client.git_ok(&work, &["push", &url, "main"]);
    // It fetched what the node served before: v1, now as a new revision.
    let now = node.get_with("/", &[("host", HOST)]);
    assert_eq!(now.text().trim(), "v1");
    assert_ne!(
        now.header("x-makiatto-revision").map(str::to_string),
        revision
    );
}

#[test]
fn dev_mode_builds_the_site_directory_and_rebuilds_it_on_change() {
    let dir = temp_dir();
    let site = dir.path().join("site");
    hugo_site(
        &site,
        &format!(
            "[[domain]]\nname = \"{HOST}\"\n\n[build]\ncommand = \"hugo\"\noutput = \"public\"\n"
        ),
        "first words",
    );
    let node = Node::start(&site);
    assert!(body(&node, HOST, "/hello/").1.contains("first words"));
    // The build ran in a copy: the site directory has no output.
    assert!(!site.join("public").exists());
    write_file(
        &site,
        "content/hello.md",
        "---\ntitle: \"Hello\"\n---\nsecond words\n",
    );
    let started = Instant::now();
    while !body(&node, HOST, "/hello/").1.contains("second words") {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never rebuilt: {}",
            node.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
