//! Tests of `scripts/lib/prereqs.sh` (issue 10): its decisions, checked with stubbed commands.
//!
//! Each case runs the real script under bash with a PATH that holds only a few basic tools and
//! stubs of `cargo`, `rustup`, `rustc`, `qemu-system-*`, `id` and `apt-get`. The stubs log every
//! call to a file and answer from environment variables, so a case can say "the pinned toolchain
//! lacks these targets" or "there is no rustup" and then check what the script asked for and
//! what it printed. Nothing is installed and no system file is written.
#![cfg(unix)] // bash and Unix permissions (the foreign-target clippy builds every test)

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

struct Sandbox {
    dir: PathBuf,
}

const BASIC_TOOLS: &[&str] = &[
    "bash", "sed", "awk", "grep", "tr", "ls", "head", "cat", "printf", "dirname", "sort",
];

/// The stub script: logs `name args` and answers per the STUB_* variables.
const STUB: &str = r#"#!/bin/bash
name=$(basename "$0")
echo "$name $*" >> "$STUB_LOG"
case "$name" in
  cargo) exit 0 ;;
  id) echo "${STUB_UID:-1000}" ;;
  rustc)
    case "$1" in
      --print) echo "$STUB_SYSROOT" ;;
      *) echo "rustc 1.95.0 (stub)" ;;
    esac ;;
  rustup)
    case "$1 $2" in
      "run "*) [ -n "${STUB_NO_TOOLCHAIN:-}" ] && exit 1; exit 0 ;;
      "target list") printf '%s\n' $STUB_TARGETS ;;
      "component list") for c in $STUB_COMPONENTS; do echo "$c-x86_64-unknown-linux-gnu"; done ;;
      *) exit 0 ;;
    esac ;;
  qemu-system-aarch64|qemu-system-x86_64)
    [ -n "${STUB_QEMU_VERSION:-}" ] || exit 127
    echo "QEMU emulator version $STUB_QEMU_VERSION (stub)" ;;
  apt-get) exit 0 ;;
esac
"#;

impl Sandbox {
    /// A scratch folder with `bin/` (basic tools + the stubs named in `stubs`) and a copy of the
    /// repository's rust-toolchain.toml (the script reads it from the current directory).
    fn new(name: &str, stubs: &[&str]) -> Sandbox {
        let dir =
            std::env::temp_dir().join(format!("atomprobe-prereqs-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let bin = dir.join("bin");
        fs::create_dir_all(&bin).unwrap();
        for tool in BASIC_TOOLS {
            let found = ["/usr/bin", "/bin"]
                .iter()
                .map(|d| Path::new(d).join(tool))
                .find(|p| p.exists())
                .unwrap_or_else(|| panic!("{tool} not found in /usr/bin or /bin"));
            std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
        }
        for stub in stubs {
            let p = bin.join(stub);
            fs::write(&p, STUB).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
        // `basename` is used by the stub itself.
        std::os::unix::fs::symlink("/usr/bin/basename", bin.join("basename")).unwrap();
        fs::copy(
            repo_root().join("rust-toolchain.toml"),
            dir.join("rust-toolchain.toml"),
        )
        .unwrap();
        Sandbox { dir }
    }

    /// Source the script and run `call` (bash); returns (status, stderr, call log).
    fn run(&self, call: &str, env: &[(&str, &str)]) -> (i32, String, String) {
        let log = self.dir.join("calls.log");
        let _ = fs::remove_file(&log);
        let script = repo_root().join("scripts/lib/prereqs.sh");
        let mut cmd = Command::new("/bin/bash");
        cmd.arg("-c")
            .arg(format!("source '{}'; {call}", script.display()))
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", self.dir.join("bin"))
            .env("STUB_LOG", &log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            fs::read_to_string(&log).unwrap_or_default(),
        )
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

const ALL_TARGETS: &str = "aarch64-unknown-none x86_64-unknown-none x86_64-unknown-uefi \
    aarch64-unknown-uefi aarch64-unknown-linux-gnu x86_64-apple-darwin aarch64-apple-darwin \
    x86_64-pc-windows-msvc x86_64-unknown-linux-gnu";
const ALL_COMPONENTS: &str = "rust-src llvm-tools clippy rustfmt cargo rustc rust-std";

const RUST_STUBS: &[&str] = &["cargo", "rustup", "rustc", "id"];

#[test]
fn installed_toolchain_without_bare_metal_targets_gets_them_added() {
    let sb = Sandbox::new("targets", RUST_STUBS);
    // The issue 10 situation: 1.95.0 is installed, with only the host target.
    let (status, err, log) = sb.run(
        "rust_prereqs",
        &[
            ("STUB_TARGETS", "x86_64-unknown-linux-gnu"),
            ("STUB_COMPONENTS", ALL_COMPONENTS),
        ],
    );
    assert_eq!(status, 0, "stderr: {err}\ncalls: {log}");
    let add = log
        .lines()
        .find(|l| l.starts_with("rustup target add"))
        .unwrap_or_else(|| panic!("no `rustup target add` call; calls:\n{log}"));
    assert!(add.contains("--toolchain 1.95.0"), "{add}");
    for t in [
        "aarch64-unknown-none",
        "x86_64-unknown-none",
        "x86_64-unknown-uefi",
    ] {
        assert!(
            add.split_whitespace().any(|w| w == t),
            "{t} not added: {add}"
        );
    }
    assert!(!log.contains("component add"), "nothing was missing: {log}");
    // One line says what was installed.
    let said: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("adding to Rust"))
        .collect();
    assert_eq!(said.len(), 1, "stderr: {err}");
    assert!(said[0].contains("aarch64-unknown-none"), "{}", said[0]);
}

#[test]
fn missing_components_are_added_and_complete_toolchain_is_left_alone() {
    let sb = Sandbox::new("components", RUST_STUBS);
    let (status, err, log) = sb.run(
        "rust_prereqs",
        &[
            ("STUB_TARGETS", ALL_TARGETS),
            ("STUB_COMPONENTS", "clippy rustfmt"),
        ],
    );
    assert_eq!(status, 0, "stderr: {err}");
    let add = log
        .lines()
        .find(|l| l.starts_with("rustup component add"))
        .unwrap();
    assert!(
        add.contains("rust-src") && add.contains("llvm-tools"),
        "{add}"
    );
    assert!(!log.contains("target add"), "{log}");

    let (status, err, log) = sb.run(
        "rust_prereqs",
        &[
            ("STUB_TARGETS", ALL_TARGETS),
            ("STUB_COMPONENTS", ALL_COMPONENTS),
        ],
    );
    assert_eq!(status, 0, "stderr: {err}");
    assert!(
        !log.contains(" add"),
        "a complete toolchain must not be changed: {log}"
    );
    assert!(
        err.is_empty(),
        "a complete toolchain is checked silently: {err}"
    );
}

#[test]
fn absent_pinned_toolchain_is_installed() {
    let sb = Sandbox::new("toolchain", RUST_STUBS);
    let (status, err, log) = sb.run(
        "rust_prereqs",
        &[
            ("STUB_NO_TOOLCHAIN", "1"),
            ("STUB_TARGETS", ALL_TARGETS),
            ("STUB_COMPONENTS", ALL_COMPONENTS),
        ],
    );
    assert_eq!(status, 0, "stderr: {err}");
    assert!(log.contains("rustup toolchain install 1.95.0"), "{log}");
}

#[test]
fn cargo_without_rustup_names_the_missing_targets() {
    let sb = Sandbox::new("norustup", &["cargo", "rustc", "id"]);
    let sysroot = sb.dir.join("sysroot");
    // A distribution's Rust with core for x86_64-unknown-none only.
    let lib = sysroot.join("lib/rustlib/x86_64-unknown-none/lib");
    fs::create_dir_all(&lib).unwrap();
    fs::write(lib.join("libcore-0123.rlib"), b"").unwrap();
    let (status, err, _) = sb.run(
        "rust_prereqs",
        &[("STUB_SYSROOT", sysroot.to_str().unwrap())],
    );
    assert_eq!(status, 1, "stderr: {err}");
    assert!(
        err.contains("cannot build for: aarch64-unknown-none"),
        "{err}"
    );
    assert!(
        !err.contains("x86_64-unknown-none"),
        "that one has a core: {err}"
    );
    assert!(err.contains("rustup"), "says how to get it: {err}");

    let lib = sysroot.join("lib/rustlib/aarch64-unknown-none/lib");
    fs::create_dir_all(&lib).unwrap();
    fs::write(lib.join("libcore-4567.rlib"), b"").unwrap();
    let (status, err, _) = sb.run(
        "rust_prereqs",
        &[("STUB_SYSROOT", sysroot.to_str().unwrap())],
    );
    assert_eq!(status, 0, "both targets have a core now: {err}");
}

#[test]
fn no_cargo_at_all_says_how_to_get_rust() {
    let sb = Sandbox::new("nocargo", &["id"]);
    let (status, err, _) = sb.run("rust_prereqs", &[]);
    assert_eq!(status, 1);
    assert!(err.contains("cargo not found"), "{err}");
}

#[test]
fn old_or_missing_qemu_without_root_is_named_with_its_version() {
    let mut stubs = RUST_STUBS.to_vec();
    stubs.extend(["qemu-system-aarch64", "qemu-system-x86_64"]);
    let sb = Sandbox::new("qemu", &stubs);
    let rust = [
        ("STUB_TARGETS", ALL_TARGETS),
        ("STUB_COMPONENTS", ALL_COMPONENTS),
    ];

    let mut env = rust.to_vec();
    env.push(("STUB_QEMU_VERSION", "8.2.2"));
    let (status, err, log) = sb.run("prereqs", &env);
    assert_eq!(status, 1, "QEMU 8.2 is too old: {err}");
    assert!(
        err.contains("qemu-system-aarch64 (version 8.2 < 9.0)"),
        "{err}"
    );
    assert!(
        err.contains("bookworm-backports"),
        "says how to install it: {err}"
    );
    assert!(
        !log.contains("apt-get"),
        "not root: nothing may be installed: {log}"
    );

    let (status, err, _) = sb.run("prereqs", &rust);
    assert_eq!(status, 1);
    assert!(err.contains("qemu-system-x86_64 (not installed)"), "{err}");

    let mut env = rust.to_vec();
    env.push(("STUB_QEMU_VERSION", "10.0.2"));
    let (status, err, _) = sb.run("prereqs", &env);
    assert_eq!(status, 0, "QEMU 10.0 is enough: {err}");
}

#[test]
fn missing_test_packages_are_installed_as_root_and_named_otherwise() {
    let mut stubs = RUST_STUBS.to_vec();
    stubs.extend(["qemu-system-aarch64", "qemu-system-x86_64", "apt-get"]);
    let sb = Sandbox::new("testpkgs", &stubs);
    let present = sb.dir.join("present.fd");
    fs::write(&present, b"").unwrap();
    // One package whose proof exists and one whose proof never appears.
    let call = format!(
        "ATOMPROBE_TEST_PACKAGES=('ovmf:{}' 'mtools:no-such-command-mdir'); test_prereqs",
        present.display()
    );
    let base = [
        ("STUB_TARGETS", ALL_TARGETS),
        ("STUB_COMPONENTS", ALL_COMPONENTS),
        ("STUB_QEMU_VERSION", "10.0.2"),
    ];

    let mut env = base.to_vec();
    env.push(("STUB_UID", "0"));
    let (status, err, log) = sb.run(&call, &env);
    assert!(
        log.contains("apt-get install -y -qq mtools"),
        "root installs it: {log}"
    );
    assert!(!log.contains("ovmf"), "ovmf is present: {log}");
    // The stub apt-get installs nothing, so the script must notice and fail.
    assert_eq!(status, 1, "{err}");
    assert!(err.contains("still missing after install: mtools"), "{err}");

    let (status, err, log) = sb.run(&call, &base);
    assert_eq!(status, 1);
    assert!(!log.contains("apt-get"), "not root: {log}");
    assert!(
        err.contains("apt-get install -y mtools"),
        "names the package: {err}"
    );
}
