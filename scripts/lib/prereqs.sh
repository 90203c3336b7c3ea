# shellcheck shell=bash
# Prerequisite check shared by scripts/run and scripts/test (source it, then call `prereqs`).
#
# Needs: cargo (rustup installs the pinned toolchain and targets from rust-toolchain.toml), and
# qemu-system-aarch64 + qemu-system-x86_64 >= 9.0 (raspi4b needs 9.0). When QEMU is missing or too
# old and we are root on Debian 12 it is installed from bookworm-backports; on other Debian/Ubuntu
# from the main archive; otherwise the script says what is missing and exits 1.
# ovmf and qemu-user are installed in the same apt call when available (never required here).

ATOMPROBE_QEMU_MIN_MAJOR=9
ATOMPROBE_QEMU_MIN_MINOR=0

# Prints "MAJOR MINOR" of a QEMU binary, or nothing if it is absent or unreadable.
qemu_version_of() {
    local v
    command -v "$1" >/dev/null 2>&1 || return 0
    v=$("$1" --version 2>/dev/null | head -n1 | sed -n 's/.*version \([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1 \2/p')
    printf '%s' "$v"
}

# Succeeds when $1 exists and is >= the minimum version.
qemu_ok() {
    local v major minor
    v=$(qemu_version_of "$1")
    [ -n "$v" ] || return 1
    read -r major minor <<<"$v"
    [ "$major" -gt "$ATOMPROBE_QEMU_MIN_MAJOR" ] ||
        { [ "$major" -eq "$ATOMPROBE_QEMU_MIN_MAJOR" ] && [ "$minor" -ge "$ATOMPROBE_QEMU_MIN_MINOR" ]; }
}

qemu_missing_list() {
    local b v missing=()
    for b in qemu-system-aarch64 qemu-system-x86_64; do
        if ! qemu_ok "$b"; then
            v=$(qemu_version_of "$b")
            if [ -z "$v" ]; then missing+=("$b (not installed)"); else missing+=("$b (version ${v/ /.} < ${ATOMPROBE_QEMU_MIN_MAJOR}.${ATOMPROBE_QEMU_MIN_MINOR})"); fi
        fi
    done
    printf '%s\n' "${missing[@]}"
}

# Install QEMU with apt; $1 = extra apt-get install options (e.g. "-t bookworm-backports").
apt_install_qemu() {
    local target_opt=$1
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || return 1
    # ovmf and qemu-user are for later work: try them in the same call, and if that fails
    # (not available here) install QEMU alone.
    # shellcheck disable=SC2086
    apt-get install -y -qq $target_opt qemu-system-arm qemu-system-x86 ovmf qemu-user >/dev/null && return 0
    echo "prereqs: note: installing without ovmf/qemu-user (not needed yet)" >&2
    # shellcheck disable=SC2086
    apt-get install -y -qq $target_opt qemu-system-arm qemu-system-x86 >/dev/null
}

# The `targets = [...]` / `components = [...]` entries of rust-toolchain.toml, one a line.
# ($1 = targets|components; the file is the repository's, read from the current directory.)
toolchain_list() {
    awk -v key="$1" '$0 ~ "^" key "[ \t]*=" { on = 1 } on { print } on && /]/ { exit }' rust-toolchain.toml |
        tr ',' '\n' |
        sed -n 's/.*"\([^"]*\)".*/\1/p'
}

# rustup adds the targets and components of rust-toolchain.toml only when it installs the
# toolchain itself; a toolchain that is already there is used as it is (issue 10). So compare
# what the file lists with what the pinned toolchain has and add what is missing, in one line.
# Without rustup (a distribution's cargo), check that both bare-metal targets have a `core`
# and say exactly what is missing.
rust_prereqs() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "prereqs: cargo not found: install Rust with rustup (https://rustup.rs); the pinned" >&2
        echo "         toolchain and targets come from rust-toolchain.toml" >&2
        return 1
    fi
    local channel
    channel=$(sed -n 's/^channel[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' rust-toolchain.toml)
    if ! command -v rustup >/dev/null 2>&1; then
        local t sysroot missing=()
        sysroot=$(rustc --print sysroot 2>/dev/null)
        for t in aarch64-unknown-none x86_64-unknown-none; do
            ls "$sysroot/lib/rustlib/$t/lib/"libcore-*.rlib >/dev/null 2>&1 || missing+=("$t")
        done
        [ ${#missing[@]} -eq 0 ] && return 0
        echo "prereqs: this Rust ($(rustc --version 2>/dev/null), no rustup) cannot build for: ${missing[*]}" >&2
        echo "         install rustup (https://rustup.rs) and run the command again: it then installs" >&2
        echo "         Rust $channel with the targets and components listed in rust-toolchain.toml" >&2
        return 1
    fi
    # Installs the toolchain itself when absent (with everything the file lists).
    if ! rustup run "$channel" rustc --version >/dev/null 2>&1; then
        echo "prereqs: installing Rust $channel (rust-toolchain.toml)" >&2
        rustup toolchain install "$channel" --profile minimal >&2 || return 1
    fi
    local want have add_t=() add_c=() x
    have=$(rustup target list --installed --toolchain "$channel" 2>/dev/null)
    for x in $(toolchain_list targets); do
        grep -qx "$x" <<<"$have" || add_t+=("$x")
    done
    have=$(rustup component list --installed --toolchain "$channel" 2>/dev/null | sed 's/-x86_64.*//; s/-aarch64.*//; s/-preview$//')
    for x in $(toolchain_list components); do
        want=${x%-preview}
        grep -qx "$want" <<<"$have" || add_c+=("$x")
    done
    [ ${#add_t[@]} -eq 0 ] && [ ${#add_c[@]} -eq 0 ] && return 0
    echo "prereqs: adding to Rust $channel (from rust-toolchain.toml):${add_t[*]:+ targets ${add_t[*]}}${add_c[*]:+ components ${add_c[*]}}" >&2
    if [ ${#add_t[@]} -gt 0 ]; then
        rustup target add --toolchain "$channel" "${add_t[@]}" >/dev/null 2>&1 || {
            echo "prereqs: rustup target add --toolchain $channel ${add_t[*]} failed" >&2
            return 1
        }
    fi
    if [ ${#add_c[@]} -gt 0 ]; then
        rustup component add --toolchain "$channel" "${add_c[@]}" >/dev/null 2>&1 || {
            echo "prereqs: rustup component add --toolchain $channel ${add_c[*]} failed" >&2
            return 1
        }
    fi
}

prereqs() {
    rust_prereqs || return 1
    local missing
    missing=$(qemu_missing_list)
    [ -z "$missing" ] && return 0

    echo "prereqs: need QEMU >= ${ATOMPROBE_QEMU_MIN_MAJOR}.${ATOMPROBE_QEMU_MIN_MINOR}; missing:" >&2
    sed 's/^/  /' <<<"$missing" >&2
    local id="" version_id="" like=""
    if [ -r /etc/os-release ]; then
        # shellcheck disable=SC1091
        id=$(. /etc/os-release && echo "${ID:-}")
        version_id=$(. /etc/os-release && echo "${VERSION_ID:-}")
        like=$(. /etc/os-release && echo "${ID_LIKE:-}")
    fi
    local root=0
    [ "$(id -u)" -eq 0 ] && root=1
    if [ "$root" -eq 1 ] && [ "$id" = debian ] && [ "$version_id" = 12 ]; then
        echo "prereqs: installing qemu-system-arm qemu-system-x86 from bookworm-backports" >&2
        echo 'deb http://deb.debian.org/debian bookworm-backports main' >/etc/apt/sources.list.d/backports.list
        apt_install_qemu "-t bookworm-backports" || {
            echo "prereqs: apt-get install from bookworm-backports failed" >&2
            return 1
        }
    elif [ "$root" -eq 1 ] && command -v apt-get >/dev/null 2>&1 &&
        { [ "$id" = debian ] || [ "$id" = ubuntu ] || [[ "$like" == *debian* ]]; }; then
        echo "prereqs: installing qemu-system-arm qemu-system-x86 with apt-get" >&2
        apt_install_qemu "" || {
            echo "prereqs: apt-get install failed" >&2
            return 1
        }
    else
        cat >&2 <<'HOW'
prereqs: install QEMU >= 9.0 with qemu-system-aarch64 and qemu-system-x86_64, e.g.
  Debian 12 (as root): echo 'deb http://deb.debian.org/debian bookworm-backports main' \
        > /etc/apt/sources.list.d/backports.list && apt-get update &&
        apt-get install -y -t bookworm-backports qemu-system-arm qemu-system-x86
  Debian 13 / Ubuntu 24.04+ (as root): apt-get install -y qemu-system-arm qemu-system-x86
  macOS: brew install qemu
HOW
        return 1
    fi
    missing=$(qemu_missing_list)
    if [ -n "$missing" ]; then
        echo "prereqs: still missing after install:" >&2
        sed 's/^/  /' <<<"$missing" >&2
        return 1
    fi
    echo "prereqs: $(qemu-system-aarch64 --version | head -n1)" >&2
}

# For the aarch64 hosted tests (issue 5): a cross linker and libc, and qemu-aarch64 user mode.
# Installed with apt when we are root on Debian/Ubuntu; otherwise says what is missing.
cross_prereqs() {
    local need=()
    command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need+=(gcc-aarch64-linux-gnu)
    [ -d /usr/aarch64-linux-gnu/lib ] || need+=(libc6-dev-arm64-cross)
    command -v qemu-aarch64 >/dev/null 2>&1 || need+=(qemu-user)
    [ ${#need[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "prereqs: installing ${need[*]} for the aarch64 hosted tests" >&2
        local opt=""
        # Debian 12: qemu-user must come from backports to match qemu-system (10.x).
        [ -f /etc/apt/sources.list.d/backports.list ] && opt="-t bookworm-backports"
        export DEBIAN_FRONTEND=noninteractive
        # shellcheck disable=SC2086
        { apt-get update -qq && apt-get install -y -qq $opt "${need[@]}" >/dev/null; } || {
            echo "prereqs: apt-get install ${need[*]} failed" >&2
            return 1
        }
        return 0
    fi
    echo "prereqs: the aarch64 hosted tests need: ${need[*]} (Debian/Ubuntu package names)" >&2
    return 1
}

# Debian packages the tests (scripts/test) need beyond QEMU, as "package:proof" pairs: the proof
# is a file that the package installs (absolute path) or a command it puts on PATH.
#   ovmf, qemu-efi-aarch64  UEFI firmware for the pc-uefi / virt-uefi profiles (issue 12)
#   mtools, fdisk           independent readers of the disk images we build (mdir/mcopy, sfdisk)
#   chromium                renders the HTML report in the browser test (issue 15)
ATOMPROBE_TEST_PACKAGES=(
    "ovmf:/usr/share/OVMF/OVMF_CODE_4M.fd"
    "qemu-efi-aarch64:/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"
    "mtools:mdir"
    "fdisk:sfdisk"
    "chromium:chromium"
)

# The packages of "package:proof" pairs ($@) whose proof is missing, one a line.
packages_missing() {
    local pair pkg proof
    for pair in "$@"; do
        pkg=${pair%%:*}
        proof=${pair#*:}
        if [ "${proof#/}" != "$proof" ]; then
            [ -e "$proof" ] || echo "$pkg"
        else
            command -v "$proof" >/dev/null 2>&1 || echo "$pkg"
        fi
    done
}

# Everything scripts/test needs: prereqs (Rust, QEMU) plus ATOMPROBE_TEST_PACKAGES, installed with
# apt-get as root on Debian/Ubuntu; otherwise the packages are named and the call fails.
test_prereqs() {
    prereqs || return 1
    local need
    mapfile -t need < <(packages_missing "${ATOMPROBE_TEST_PACKAGES[@]}")
    [ ${#need[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "prereqs: installing ${need[*]} for the tests" >&2
        export DEBIAN_FRONTEND=noninteractive
        { apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; } || {
            echo "prereqs: apt-get install ${need[*]} failed" >&2
            return 1
        }
        mapfile -t need < <(packages_missing "${ATOMPROBE_TEST_PACKAGES[@]}")
        [ ${#need[@]} -eq 0 ] && return 0
        echo "prereqs: still missing after install: ${need[*]}" >&2
        return 1
    fi
    echo "prereqs: the tests need these Debian/Ubuntu packages (or your system's equivalents): ${need[*]}" >&2
    echo "         as root: apt-get install -y ${need[*]}" >&2
    return 1
}
