//! Translation of parsed `.litmus` files into the Rust module the probes crate compiles in
//! (`probes::litmus::file`): the user's files via `atomprobe litmus` and `ATOMPROBE_LITMUS_GEN`,
//! the built-in suite (`probes/litmus`) via `probes/build.rs`. One `asm!` block per thread
//! holding the test's own instruction text.
//!
//! What is rewritten, and only that (ARCHITECTURE.md, "Litmus files"):
//! - registers become operands the compiler allocates: AArch64 `X3`/`W3` → `{r3:x}`/`{r3:w}`,
//!   x86-64 `%eax`/`%rax`/`%ax`/`%al` → `{r0:e}`/`{r0:r}`/`{r0:x}`/`{r0:l}`; every one is an
//!   `inout` operand bound to a slot of the runner's `io` array (initial value from the init
//!   block, else 0, as herd7 starts registers; final value read back for the outcome);
//! - x86-64 memory operands `(x)` naming a location become `({a1})`, an operand holding the
//!   instance's address of `x` (AArch64 tests reach locations through registers the init block
//!   sets to addresses, which are ordinary register slots);
//! - labels become numeric local labels (`2:`, branches `2f`/`2b`), so an inlined block can
//!   appear many times in one object;
//! - `{` and `}` are doubled (asm! template syntax).
//!
//! Everything else goes to the assembler as written, so any instruction it knows works. A
//! construct that cannot run inside the harness (stack or frame pointer, system registers,
//! calls and returns, SIMD registers, `$x` address immediates, x86 high-byte registers) is
//! refused with its name.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use crate::norm::{canonical_reg, digest, kind_verdict, x86_family};
use crate::parse::{Atom, FileArch, LitmusFile, Value};
use crate::{Kind, MAX_IO};

/// One translated thread.
#[derive(Clone, Debug, PartialEq)]
pub struct GenThread {
    /// Template lines.
    pub lines: Vec<String>,
    /// Slot names (`X1`, `rax`, `&x`), operand `r<k>` starting from `init[k]` of the runner's
    /// frame.
    pub slots: Vec<String>,
    /// Per slot: whether it starts as a location's address (`&x`, or a register the init block
    /// points at a location); the body adds the instance's offset to those.
    pub addr: Vec<bool>,
    /// The slots whose final values the outcome reads (registers of this thread named in
    /// `locations`, the condition or the filter), ascending; the body stores them, in this
    /// order, where the runner's `out` pointer says.
    pub kept: Vec<usize>,
    /// Whether some instruction may access more than 4 bytes of memory ([`wide_access`]).
    pub wide: bool,
    /// CPU features its instructions need (`Lse`, `Lrcpc`: names of
    /// `probes::rules::atomicity::Feature`).
    pub needs: Vec<&'static str>,
}

/// Whether instruction `cell` (as the test writes it) may access more than 4 bytes of memory,
/// conservatively: the runner packs the locations of a test none of whose instructions does so
/// 4 bytes apart instead of 8. AArch64: an instruction with a `[…]` operand is narrow unless it
/// names an X register outside the brackets (the data register's width is the access size,
/// Arm ARM C6.2) or is a pair form (`LDP`, `STP`, `LDXP`, `CASP`, …: two registers). x86-64
/// (AT&T): an instruction with a `(…)` operand is wide if its mnemonic carries the `q` suffix,
/// is `cmpxchg8b`/`cmpxchg16b`, or names a 64-bit register outside the parentheses (an
/// unsuffixed access takes its register's size; Intel SDM Vol. 1 3.7).
pub fn wide_access(arch: FileArch, cell: &str) -> bool {
    let text = cell.trim();
    // The part outside memory operands, and whether there is one.
    let (open, close) = match arch {
        FileArch::AArch64 => ('[', ']'),
        FileArch::X86_64 => ('(', ')'),
    };
    if !text.contains(open) {
        return false;
    }
    let mut outside = String::new();
    let mut depth = 0usize;
    for c in text.chars() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth = depth.saturating_sub(1);
        } else if depth == 0 {
            outside.push(c);
        }
    }
    let mut words = outside
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .filter(|w| !w.is_empty());
    let mut mnemonic = words.next().unwrap_or("").to_ascii_lowercase();
    if arch == FileArch::X86_64 && mnemonic == "lock" {
        mnemonic = words.next().unwrap_or("").to_ascii_lowercase();
    }
    let operands: Vec<String> = words.map(|w| w.to_ascii_lowercase()).collect();
    match arch {
        FileArch::AArch64 => {
            let pair = [
                "ldp", "stp", "ldnp", "stnp", "ldxp", "ldaxp", "stxp", "stlxp", "casp",
            ]
            .iter()
            .any(|p| mnemonic.starts_with(p));
            let x_reg = operands.iter().any(|w| {
                w == "xzr"
                    || (w.len() > 1
                        && w.starts_with('x')
                        && w[1..].bytes().all(|b| b.is_ascii_digit()))
            });
            pair || x_reg
        }
        FileArch::X86_64 => {
            mnemonic.ends_with('q')
                || mnemonic.ends_with("8b")
                || mnemonic.ends_with("16b")
                || operands.iter().any(|w| {
                    w.strip_prefix('%')
                        .and_then(x86_family)
                        .is_some_and(|fam| w[1..] == *fam)
                })
        }
    }
}

/// The AArch64 feature mnemonic `m` (upper case, no condition suffix) needs: FEAT_LSE for the
/// CAS/SWP/LD<op>/ST<op> atomics, FEAT_LRCPC for LDAPR (Arm ARM C6.2).
fn a64_feature(m: &str) -> Option<&'static str> {
    const LSE: [&str; 18] = [
        "CAS", "SWP", "LDADD", "LDCLR", "LDEOR", "LDSET", "LDSMAX", "LDSMIN", "LDUMAX", "LDUMIN",
        "STADD", "STCLR", "STEOR", "STSET", "STSMAX", "STSMIN", "STUMAX", "STUMIN",
    ];
    if LSE.iter().any(|p| m.starts_with(p)) {
        Some("Lse")
    } else if m.starts_with("LDAPR") {
        Some("Lrcpc")
    } else {
        None
    }
}

/// x86-64 registers the compiler can allocate for `reg` operands (rax, rcx, rdx, rsi, rdi,
/// r8–r15: rbx, rbp and rsp are reserved by LLVM).
const X86_ALLOCATABLE: usize = 13;
/// AArch64 `reg` operands: x0–x30 without x18 (platform), x19 (LLVM base pointer), x29 (frame
/// pointer), x30 (link register, allocatable but kept free here).
const A64_ALLOCATABLE: usize = 27;

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}
fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// Numeric local label `k` (0-based): 2, 3, … skipping numbers made of 0 and 1 only, which
/// assemblers may read as binary literals (`10b`; the Rust reference warns about them).
fn label_number(k: usize) -> u32 {
    let mut n = 1u32;
    let mut left = k + 1;
    while left > 0 {
        n += 1;
        if !n.to_string().chars().all(|c| c == '0' || c == '1') {
            left -= 1;
        }
    }
    n
}

/// Instructions that leave or reach outside the block.
fn refused_mnemonic(arch: FileArch, m: &str) -> Option<&'static str> {
    let m = m.to_ascii_lowercase();
    match arch {
        FileArch::AArch64 => match m.as_str() {
            "bl" | "blr" | "br" | "ret" | "eret" => Some("a call, return or indirect branch"),
            "svc" | "hvc" | "smc" | "brk" | "hlt" => Some("an exception-generating instruction"),
            "msr" | "mrs" | "sys" | "sysl" => Some("a system register access"),
            "adr" | "adrp" => Some("a PC-relative address (ADR/ADRP)"),
            _ => None,
        },
        FileArch::X86_64 => match m.as_str() {
            "call" | "callq" | "ret" | "retq" | "int" | "syscall" | "hlt" => {
                Some("a call, return, interrupt or halt")
            }
            "push" | "pushq" | "pop" | "popq" | "pushf" | "popf" | "pushfq" | "popfq" => {
                Some("a stack access (PUSH/POP)")
            }
            _ => None,
        },
    }
}

/// Translate thread `t` of `f`.
pub fn translate_thread(f: &LitmusFile, t: usize) -> Result<GenThread, String> {
    let arch = f.arch;
    let th = &f.threads[t];
    // Location names: everything the init block and condition name as a location.
    let mut locs: Vec<String> = Vec::new();
    for i in &f.init {
        if let Atom::Loc(l) = &i.target {
            locs.push(l.clone());
        }
        if let Value::Addr(a) = &i.value {
            locs.push(a.clone());
        }
    }
    let mut atoms = Vec::new();
    f.cond.prop.atoms(&mut atoms);
    atoms.extend(f.locations.iter().cloned());
    for a in atoms {
        if let Atom::Loc(l) = a {
            locs.push(l);
        }
    }
    // Labels, in code order.
    let mut labels: Vec<(String, usize)> = Vec::new();
    for (k, (c, _)) in th.code.iter().enumerate() {
        if let Some(l) = c.strip_suffix(':') {
            let l = l.trim();
            if l.chars().next().is_some_and(is_ident_start) && l.chars().all(is_ident) {
                labels.push((l.to_string(), k));
            }
        }
    }
    let mut slots: Vec<String> = Vec::new();
    let mut slot_of = |name: String| -> usize {
        if let Some(k) = slots.iter().position(|s| *s == name) {
            return k;
        }
        slots.push(name);
        slots.len() - 1
    };
    let mut lines = Vec::new();
    let mut needs: Vec<&'static str> = Vec::new();
    let wide = th.code.iter().any(|(cell, _)| wide_access(arch, cell));
    for (k, (cell, pos)) in th.code.iter().enumerate() {
        let at = |what: String| format!("P{t} line {} col {}: {what}", pos.line, pos.col);
        if let Some(n) = labels.iter().position(|(_, i)| *i == k) {
            lines.push(format!("{}:", label_number(n)));
            continue;
        }
        let text = cell.replace('{', "{{").replace('}', "}}");
        let chars: Vec<char> = text.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        let mut first_word = true;
        while i < chars.len() {
            let c = chars[i];
            if c.is_ascii_digit() {
                // A number (immediate, offset): copied whole, so `0x10` is not read as `x10`.
                while i < chars.len() && chars[i].is_ascii_alphanumeric() {
                    out.push(chars[i]);
                    i += 1;
                }
                first_word = false;
                continue;
            }
            if arch == FileArch::X86_64 && c == '%' {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && chars[j].is_ascii_alphanumeric() {
                    j += 1;
                }
                let r: String = chars[start..j]
                    .iter()
                    .collect::<String>()
                    .to_ascii_lowercase();
                let Some(fam) = x86_family(&r) else {
                    return Err(at(format!("register `%{r}` (only general registers are renamed; high-byte and other registers are not supported)")));
                };
                if fam == "rsp" || fam == "rbp" {
                    return Err(at(format!("the stack or frame pointer `%{r}`")));
                }
                let modifier = if r == fam {
                    "r"
                } else if r.starts_with('e') || r.ends_with('d') {
                    "e"
                } else if r.ends_with('l') || r.ends_with('b') {
                    "l"
                } else {
                    "x"
                };
                let s = slot_of(fam.to_string());
                out.push_str(&format!("{{r{s}:{modifier}}}"));
                i = j;
                first_word = false;
                continue;
            }
            if arch == FileArch::X86_64 && c == '$' {
                if chars.get(i + 1).is_some_and(|c| is_ident_start(*c)) {
                    return Err(at("an address immediate `$x`".into()));
                }
                out.push(c);
                i += 1;
                continue;
            }
            if is_ident_start(c) {
                let start = i;
                while i < chars.len() && is_ident(chars[i]) {
                    i += 1;
                }
                let w: String = chars[start..i].iter().collect();
                if first_word {
                    if arch == FileArch::AArch64 {
                        if let Some(f) = a64_feature(&w.to_ascii_uppercase()) {
                            if !needs.contains(&f) {
                                needs.push(f);
                            }
                        }
                    }
                    if let Some(why) = refused_mnemonic(arch, w.split('.').next().unwrap_or(&w)) {
                        return Err(at(format!("`{w}` is {why}")));
                    }
                    out.push_str(&w);
                    first_word = false;
                    continue;
                }
                if let Some(n) = labels.iter().position(|(l, _)| *l == w) {
                    let dir = if labels[n].1 > k { 'f' } else { 'b' };
                    out.push_str(&format!("{}{dir}", label_number(n)));
                    continue;
                }
                match arch {
                    FileArch::AArch64 => {
                        let lw = w.to_ascii_lowercase();
                        let b = lw.as_bytes();
                        let numbered = b.len() > 1 && b[1..].iter().all(|c| c.is_ascii_digit());
                        if numbered && (b[0] == b'x' || b[0] == b'w') {
                            let n: u32 = lw[1..].parse().unwrap_or(99);
                            if n > 30 {
                                return Err(at(format!("register `{w}`")));
                            }
                            let s = slot_of(canonical_reg(arch, &w));
                            let m = if b[0] == b'x' { 'x' } else { 'w' };
                            out.push_str(&format!("{{r{s}:{m}}}"));
                        } else if numbered
                            && matches!(b[0], b'v' | b'q' | b'd' | b's' | b'h' | b'b')
                        {
                            return Err(at(format!("the SIMD/FP register `{w}`")));
                        } else if lw == "sp" || lw == "wsp" {
                            return Err(at("the stack pointer `SP`".into()));
                        } else if locs.contains(&w) {
                            return Err(at(format!(
                                "location `{w}` named in the code (AArch64 tests reach locations through registers)"
                            )));
                        } else {
                            out.push_str(&w);
                        }
                    }
                    FileArch::X86_64 => {
                        // `(x)`: a location operand.
                        let before = out.trim_end().ends_with('(');
                        let after = chars[i..].iter().find(|c| !c.is_whitespace()) == Some(&')');
                        if before && after {
                            let s = slot_of(format!("&{w}"));
                            out.push_str(&format!("{{r{s}}}"));
                        } else if locs.contains(&w) || before {
                            return Err(at(format!(
                                "location `{w}` outside a `({w})` memory operand"
                            )));
                        } else {
                            out.push_str(&w);
                        }
                    }
                }
                continue;
            }
            out.push(c);
            i += 1;
        }
        lines.push(out);
    }
    let limit = match arch {
        FileArch::AArch64 => A64_ALLOCATABLE,
        FileArch::X86_64 => X86_ALLOCATABLE,
    }
    .min(MAX_IO);
    if slots.len() > limit {
        return Err(format!(
            "P{t} uses {} registers and addresses; at most {limit} can be allocated",
            slots.len()
        ));
    }
    // Registers the condition reads but the code never touches keep their initial value; give
    // them a slot (an operand the template does not use would not compile, so they are read
    // from the runner's io array: a slot with no operand).
    // The assembler accepts the instructions of an extension only after `.arch_extension`;
    // the runner checks the core has it (skipped with the reason otherwise).
    for f in needs.iter().rev() {
        lines.insert(
            0,
            match *f {
                "Lse" => ".arch_extension lse".to_string(),
                _ => ".arch_extension rcpc".to_string(),
            },
        );
    }
    // Which slots start as addresses: x86 `&x` operands, and registers the init block sets to
    // a location (`0:X1=x`), found as the runner's `prepare` finds them.
    let addr = slots
        .iter()
        .map(|s| {
            s.starts_with('&')
                || f.init.iter().any(|i| {
                    matches!(&i.target, Atom::Reg { thread, reg }
                        if *thread == t && canonical_reg(arch, reg) == canonical_reg(arch, s))
                        && matches!(i.value, Value::Addr(_))
                })
        })
        .collect();
    Ok(GenThread {
        lines,
        slots,
        addr,
        kept: Vec::new(),
        wide,
        needs,
    })
}

/// A kinds file: `Name Kind` lines (herd7's `kinds.txt`), optionally with the digest each line
/// is valid for. A line may go on after the kind with its own citation, `Name Kind why…` (the
/// derived verdicts of `probes/litmus/*/kinds-derived.txt`); that text is then the record's
/// `rule` for the test instead of the file's `source`.
#[derive(Clone, Debug, Default)]
pub struct Kinds {
    /// (name, verdict, digest the line is for: `None` = any text of that name, the line's own
    /// citation).
    pub lines: Vec<(String, Kind, Option<String>, Option<String>)>,
    /// Text for the record's `rule`.
    pub source: String,
}

impl Kinds {
    /// Parse a kinds file (`#` comments and blank lines skipped). `digests` (`Name digest`
    /// lines) restricts each named test to that text.
    pub fn parse(text: &str, digests: Option<&str>, source: &str) -> Result<Kinds, String> {
        let mut lines = Vec::new();
        for (n, l) in text.lines().enumerate() {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let mut w = l.split_whitespace();
            let (Some(name), Some(kind)) = (w.next(), w.next()) else {
                return Err(format!(
                    "{source}:{}: expected `Name Kind` (Kind: Allow, Forbid or Require), found `{l}`",
                    n + 1
                ));
            };
            let v = kind_verdict(kind).ok_or_else(|| {
                format!(
                    "{source}:{}: kind `{kind}`: accepted are Allow(ed), Forbid(den), Require(d)",
                    n + 1
                )
            })?;
            // The rest of the line after the kind, if any: this line's own citation.
            let rest = l[name.len()..].trim_start()[kind.len()..].trim();
            let why = (!rest.is_empty()).then(|| rest.to_string());
            lines.push((name.to_string(), v, None, why));
        }
        if let Some(d) = digests {
            let map: Vec<(&str, &str)> = d
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let mut w = l.split_whitespace();
                    Some((w.next()?, w.next()?))
                })
                .collect();
            for (name, _, dg, _) in &mut lines {
                // A kinds line with no digest on record never matches: the text is unknown.
                *dg = Some(
                    map.iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, d)| d.to_string())
                        .unwrap_or_else(|| "-".into()),
                );
            }
        }
        Ok(Kinds {
            lines,
            source: source.to_string(),
        })
    }

    /// The verdict for `f`, by name and (where the kinds file is tied to texts) digest.
    pub fn lookup(&self, f: &LitmusFile) -> Option<Kind> {
        self.lookup_rule(f).map(|(v, _)| v)
    }

    /// The verdict for `f` and the text for the record's `rule`: the matching line's own
    /// citation, else the file's `source`.
    pub fn lookup_rule(&self, f: &LitmusFile) -> Option<(Kind, String)> {
        let d = digest(f);
        self.lines
            .iter()
            .find(|(n, _, dg, _)| *n == f.name && dg.as_ref().is_none_or(|x| *x == d))
            .map(|(_, v, _, why)| (*v, why.clone().unwrap_or_else(|| self.source.clone())))
    }
}

/// herdtools7's catalogue kinds, shipped (with the digests of the catalogue's texts).
pub fn catalogue_kinds(arch: FileArch) -> Kinds {
    let (k, d, src) = match arch {
        FileArch::AArch64 => (
            include_str!("../../probes/tests/fixtures/litmus/aarch64/kinds.txt"),
            include_str!("litmus_kinds/aarch64.digests"),
            "herd7 aarch64.cat via herdtools7 catalogue kinds.txt (catalogue/aarch64/tests), \
             matched by name and digest",
        ),
        FileArch::X86_64 => (
            include_str!("../../probes/tests/fixtures/litmus/x86_64/kinds.txt"),
            include_str!("litmus_kinds/x86_64.digests"),
            "herd7 x86tso.cat via herdtools7 catalogue kinds.txt (catalogue/x86_64/tests), \
             matched by name and digest",
        ),
    };
    Kinds::parse(k, Some(d), src).expect("the shipped kinds files parse")
}

/// herdtools7's `aarch64-mixed` catalogue kinds (herd7 `-variant mixed`), shipped with the
/// digests of its texts: the mixed-size tests (several widths over one location).
pub fn mixed_kinds() -> Kinds {
    Kinds::parse(
        include_str!("../../probes/tests/fixtures/litmus/aarch64-mixed/kinds.txt"),
        Some(include_str!("litmus_kinds/aarch64-mixed.digests")),
        "herd7 aarch64.cat -variant mixed via herdtools7 catalogue kinds.txt \
         (catalogue/aarch64-mixed/tests), matched by name and digest",
    )
    .expect("the shipped kinds files parse")
}

/// The verdicts atomprobe derived for its built-in tests that the catalogue does not judge
/// (`probes/litmus/<arch>/kinds-derived.txt`, each line citing the rules it follows from), tied
/// to the texts of `probes/litmus/<arch>` by digest.
pub fn derived_kinds(arch: FileArch) -> Kinds {
    let (k, d, src) = match arch {
        FileArch::AArch64 => (
            include_str!("../../probes/litmus/aarch64/kinds-derived.txt"),
            include_str!("../../probes/litmus/aarch64/kinds-derived.digests"),
            "probes/litmus/aarch64/kinds-derived.txt",
        ),
        FileArch::X86_64 => (
            include_str!("../../probes/litmus/x86_64/kinds-derived.txt"),
            include_str!("../../probes/litmus/x86_64/kinds-derived.digests"),
            "probes/litmus/x86_64/kinds-derived.txt",
        ),
    };
    Kinds::parse(k, Some(d), src).expect("the shipped derived kinds files parse")
}

/// Every kinds file shipped for `arch`, in the order they are consulted: herdtools7's
/// catalogue (aarch64: also its mixed-size catalogue), then atomprobe's derived verdicts for its built-in tests.
pub fn shipped_kinds(arch: FileArch) -> Vec<Kinds> {
    match arch {
        FileArch::AArch64 => vec![catalogue_kinds(arch), mixed_kinds(), derived_kinds(arch)],
        FileArch::X86_64 => vec![catalogue_kinds(arch), derived_kinds(arch)],
    }
}

/// One test ready for the module.
pub struct GenTest {
    pub name: String,
    pub source: String,
    pub arch: FileArch,
    pub threads: Vec<GenThread>,
    pub model: Kind,
    pub rule: String,
    /// herd7's allowed final states, projected on the test's columns (`--states`): where they
    /// come from, and one row per state (`None`: a column the state does not show).
    pub states: Option<(String, Vec<Vec<Option<i64>>>)>,
}

/// Translate a whole file; the error names the construct.
pub fn translate(f: &LitmusFile, source: &str, kinds: &[&Kinds]) -> Result<GenTest, String> {
    let mut threads = Vec::new();
    for t in 0..f.threads.len() {
        threads.push(translate_thread(f, t)?);
    }
    // Every register the condition reads must be a slot of its thread; the ones the outcome
    // reads (`locations`, condition, filter) are kept.
    let mut atoms = Vec::new();
    f.cond.prop.atoms(&mut atoms);
    atoms.extend(f.locations.iter().cloned());
    if let Some(filter) = &f.filter {
        filter.atoms(&mut atoms);
    }
    for a in &atoms {
        if let Atom::Reg { thread, reg } = a {
            let Some(th) = threads.get_mut(*thread) else {
                return Err(format!(
                    "the condition reads {a}, but there is no thread {thread}"
                ));
            };
            let c = canonical_reg(f.arch, reg);
            let Some(k) = th
                .slots
                .iter()
                .position(|s| !s.starts_with('&') && canonical_reg(f.arch, s) == c)
            else {
                return Err(format!(
                    "the condition reads {a}, a register thread {thread}'s code never uses"
                ));
            };
            if !th.kept.contains(&k) {
                th.kept.push(k);
            }
        }
    }
    for th in &mut threads {
        th.kept.sort_unstable();
    }
    let (model, rule) = kinds.iter().find_map(|k| k.lookup_rule(f)).unwrap_or((
        Kind::Unknown,
        "no kinds line matches this test's name and digest".into(),
    ));
    Ok(GenTest {
        name: f.name.clone(),
        source: source.to_string(),
        arch: f.arch,
        threads,
        model,
        rule,
        states: None,
    })
}

/// The Rust module for `tests`.
pub fn render(tests: &[GenTest], origin: &str) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "// Generated by `atomprobe litmus` from {origin}. Do not edit.\n\n"
    ));
    for (n, t) in tests.iter().enumerate() {
        let (cfg_arch, opts) = match t.arch {
            FileArch::AArch64 => ("aarch64", "options(nostack)"),
            FileArch::X86_64 => ("x86_64", "options(att_syntax, nostack)"),
        };
        for (p, th) in t.threads.iter().enumerate() {
            s.push_str(&format!(
                "#[allow(unused_variables)]\nunsafe fn t{n}_p{p}(f: &Frame, out: *mut u64) {{\n"
            ));
            s.push_str(&format!("    #[cfg(target_arch = \"{cfg_arch}\")]\n"));
            s.push_str(
                "    // SAFETY: the test's own code, registers renamed to the operands below; it \
                 accesses only the locations whose addresses the runner put in the frame, and \
                 `out` has room for the kept registers (FileBody).\n",
            );
            s.push_str("    unsafe {\n        core::arch::asm!(\n");
            for l in &th.lines {
                s.push_str(&format!("            {l:?},\n"));
            }
            for k in 0..th.slots.len() {
                let start = if th.addr.get(k).copied().unwrap_or(false) {
                    format!("f.init[{k}].wrapping_add(f.off)")
                } else {
                    format!("f.init[{k}]")
                };
                let end = match th.kept.iter().position(|&j| j == k) {
                    Some(j) => format!("*out.add({j})"),
                    None => "_".into(),
                };
                s.push_str(&format!(
                    "            r{k} = inout(reg) {start} => {end},\n"
                ));
            }
            s.push_str(&format!("            {opts}\n        );\n    }}\n"));
            s.push_str(&format!(
                "    #[cfg(not(target_arch = \"{cfg_arch}\"))]\n    unreachable!(\"{} test body run on another architecture\");\n}}\n\n",
                t.arch.word()
            ));
        }
    }
    for (n, t) in tests.iter().enumerate() {
        if let Some((source, rows)) = &t.states {
            let rows: Vec<String> = rows
                .iter()
                .map(|r| {
                    let v: Vec<String> = r
                        .iter()
                        .map(|x| match x {
                            Some(v) => format!("Some({v}i64)"),
                            None => "None".into(),
                        })
                        .collect();
                    format!("&[{}]", v.join(", "))
                })
                .collect();
            s.push_str(&format!(
                "static T{n}_STATES: FileStates = FileStates {{\n    source: {source:?},\n    states: &[\n        {}\n    ],\n}};\n\n",
                rows.join(",\n        ")
            ));
        }
    }
    s.push_str("pub static FILE_TESTS: &[FileTest] = &[\n");
    for (n, t) in tests.iter().enumerate() {
        let arch = match t.arch {
            FileArch::AArch64 => "Aarch64",
            FileArch::X86_64 => "X86_64",
        };
        let bodies: Vec<String> = (0..t.threads.len()).map(|p| format!("t{n}_p{p}")).collect();
        let slots: Vec<String> = t
            .threads
            .iter()
            .map(|th| {
                let v: Vec<String> = th.slots.iter().map(|x| format!("{x:?}")).collect();
                format!("&[{}]", v.join(", "))
            })
            .collect();
        let list = |v: Vec<String>| format!("&[{}]", v.join(", "));
        let addr: Vec<String> = t
            .threads
            .iter()
            .map(|th| list(th.addr.iter().map(|b| b.to_string()).collect()))
            .collect();
        let kept: Vec<String> = t
            .threads
            .iter()
            .map(|th| list(th.kept.iter().map(|k| k.to_string()).collect()))
            .collect();
        let wide = t.threads.iter().any(|th| th.wide);
        let mut needs: Vec<&str> = t
            .threads
            .iter()
            .flat_map(|th| th.needs.iter().copied())
            .collect();
        needs.sort();
        needs.dedup();
        let needs: Vec<String> = needs
            .iter()
            .map(|f| format!("crate::rules::atomicity::Feature::{f}"))
            .collect();
        s.push_str(&format!(
            "    FileTest {{\n        name: {:?},\n        source: {:?},\n        arch: crate::attr::Arch::{arch},\n        bodies: &[{}],\n        slots: &[{}],\n        addr: &[{}],\n        kept: &[{}],\n        wide: {wide},\n        needs: &[{}],\n        model: crate::record::ModelVerdict::{:?},\n        rule: {:?},\n        states: {},\n    }},\n",
            t.name,
            t.source,
            bodies.join(", "),
            slots.join(", "),
            addr.join(", "),
            kept.join(", "),
            needs.join(", "),
            t.model,
            t.rule,
            if t.states.is_some() {
                format!("Some(&T{n}_STATES)")
            } else {
                "None".into()
            }
        ));
    }
    s.push_str("];\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn fixtures() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../probes/tests/fixtures/litmus")
    }

    /// Which operands start as addresses (the body adds the instance offset) and which
    /// registers the body stores for the outcome (condition, `locations`, filter), in slot
    /// order; rendered into the body's operands.
    #[test]
    fn address_operands_and_kept_registers() {
        let a64 = parse(
            "AArch64 T\n{ 0:X1=x; 0:X3=y; 1:X1=y; 1:X3=x; 1:X5=7; }\n P0 | P1 ;\n \
             MOV W0,#1 | LDR W4,[X1] ;\n STR W0,[X1] | ADD W5,W5,W4 ;\n \
             LDR W2,[X3] | LDR W0,[X3] ;\nlocations [1:X5;]\nexists (0:X2=0 /\\ 1:X0=0)\n",
        )
        .unwrap();
        let t = translate(&a64, "", &[]).unwrap();
        assert_eq!(t.threads[0].slots, ["X0", "X1", "X2", "X3"]);
        assert_eq!(t.threads[0].addr, [false, true, false, true]);
        assert_eq!(t.threads[0].kept, [2]);
        assert_eq!(t.threads[1].slots, ["X4", "X1", "X5", "X0", "X3"]);
        assert_eq!(t.threads[1].addr, [false, true, false, false, true]);
        assert_eq!(t.threads[1].kept, [2, 3]);
        let m = render(&[t], "test");
        assert!(
            m.contains("unsafe fn t0_p1(f: &Frame, out: *mut u64)"),
            "{m}"
        );
        assert!(
            m.contains("r1 = inout(reg) f.init[1].wrapping_add(f.off) => _,"),
            "{m}"
        );
        assert!(
            m.contains("r2 = inout(reg) f.init[2] => *out.add(0),"),
            "{m}"
        );
        assert!(
            m.contains("r3 = inout(reg) f.init[3] => *out.add(1),"),
            "{m}"
        );
        assert!(
            m.contains("addr: &[&[false, true, false, true], &[false, true, false, false, true]],"),
            "{m}"
        );
        assert!(m.contains("kept: &[&[2], &[2, 3]],"), "{m}");
        let x86 = parse(
            "X86_64 T\n{ }\n P0 | P1 ;\n movl $1,(x) | movl (y),%eax ;\n \
             movl $1,(y) | movl (x),%ebx ;\nexists (1:rax=1 /\\ 1:rbx=0)\n",
        )
        .unwrap();
        let t = translate(&x86, "", &[]).unwrap();
        assert_eq!(t.threads[1].slots, ["&y", "rax", "&x", "rbx"]);
        assert_eq!(t.threads[1].addr, [true, false, true, false]);
        assert_eq!(t.threads[1].kept, [1, 3]);
        assert!(t.threads[0].kept.is_empty());
    }

    #[test]
    fn wide_accesses_are_found() {
        use FileArch::{AArch64 as A, X86_64 as X};
        for narrow in [
            "LDR W0,[X1]",
            "STXR W4,W0,[X1]",
            "LDRB W0,[X1,X2]",
            "LDADDAL W0,W1,[X2]",
            "STR W0,[X1],#8",
            "MOV X0,X1",
            "DMB SY",
            "CBNZ X0,L1",
        ] {
            assert!(!wide_access(A, narrow), "{narrow}");
        }
        for wide in [
            "LDR X0,[X1]",
            "STXR W4,X0,[X1]",
            "LDP W0,W1,[X2]",
            "CASPAL W0,W1,W2,W3,[X4]",
            "STR XZR,[X1]",
            "SWP X0,X1,[X2]",
            "ldr x0,[x1]",
        ] {
            assert!(wide_access(A, wide), "{wide}");
        }
        for narrow in [
            "movl $1,(x)",
            "movl (y),%eax",
            "xchg %eax,(x)",
            "lock addl $1,(x)",
            "movb %al,(x)",
            "mfence",
            "movq %rax,%rbx",
            "movzbl (x),%eax",
        ] {
            assert!(!wide_access(X, narrow), "{narrow}");
        }
        for wide in [
            "movq $1,(x)",
            "mov %rax,(x)",
            "xchg (x),%r9",
            "lock cmpxchg16b (x)",
            "sbb %rax,(x)",
            "cmpxchg8b (x)",
        ] {
            assert!(wide_access(X, wide), "{wide}");
        }
    }

    #[test]
    fn aarch64_registers_labels_and_numbers() {
        let f = parse(
            "AArch64 T\n{ 0:X1=x; 0:X3=y; }\n P0 ;\n LDR W0,[X1] ;\n CBNZ W0,L1 ;\n \
             ADD X2,X0,#0x10 ;\n L1: ;\n LDR W4,[X3,W0,SXTW] ;\n B L1 ;\nexists (0:X0=0)\n",
        )
        .unwrap();
        let t = translate_thread(&f, 0).unwrap();
        // Slots in order of first use.
        assert_eq!(t.slots, ["X0", "X1", "X2", "X4", "X3"]);
        assert_eq!(
            t.lines,
            [
                "LDR {r0:w},[{r1:x}]",
                "CBNZ {r0:w},2f",
                "ADD {r2:x},{r0:x},#0x10",
                "2:",
                "LDR {r3:w},[{r4:x},{r0:w},SXTW]",
                "B 2b"
            ]
        );
    }

    #[test]
    fn x86_registers_and_locations() {
        let f = parse(
            "X86_64 T\n{ }\n P0 ;\n movl $1,(x) ;\n movq (y),%rax ;\n movb %al,(y) ;\n \
             mfence ;\n xchgl %r9d,(x) ;\nexists (0:rax=0)\n",
        )
        .unwrap();
        let t = translate_thread(&f, 0).unwrap();
        assert_eq!(t.slots, ["&x", "&y", "rax", "r9"]);
        assert_eq!(
            t.lines,
            [
                "movl $1,({r0})",
                "movq ({r1}),{r2:r}",
                "movb {r2:l},({r1})",
                "mfence",
                "xchgl {r3:e},({r0})"
            ]
        );
    }

    #[test]
    fn refusals_name_the_construct() {
        let cases = [
            ("AArch64", "MRS X0,MIDR_EL1", "system register"),
            ("AArch64", "LDR Q0,[X1]", "SIMD/FP register `Q0`"),
            ("AArch64", "BL f", "a call"),
            ("AArch64", "ADD SP,SP,#16", "stack pointer"),
            ("X86_64", "movl %esp,(x)", "stack or frame pointer"),
            ("X86_64", "movl $x,%eax", "address immediate"),
            ("X86_64", "movb %ah,(x)", "register `%ah`"),
            ("X86_64", "pushq %rax", "stack access"),
        ];
        for (arch, ins, want) in cases {
            let f = parse(&format!(
                "{arch} T\n{{ 0:X1=x; }}\n P0 ;\n {ins} ;\nexists ([x]=0)\n"
            ))
            .unwrap();
            let e = translate_thread(&f, 0).unwrap_err();
            assert!(e.contains(want), "{ins}: {e}");
            assert!(e.starts_with("P0 line 4 col 2: "), "{e}");
        }
    }

    #[test]
    fn label_numbers_avoid_binary_lookalikes() {
        let v: Vec<u32> = (0..10).map(label_number).collect();
        assert_eq!(v, [2, 3, 4, 5, 6, 7, 8, 9, 12, 13]);
    }

    /// The shipped digests are those of the catalogue copies (regenerate: see
    /// `atomprobe litmus --digests`).
    #[test]
    fn shipped_digests_match_the_catalogue() {
        for (dir, arch) in [("aarch64", FileArch::AArch64), ("x86_64", FileArch::X86_64)] {
            let kinds = catalogue_kinds(arch);
            let mut judged = 0;
            for e in std::fs::read_dir(fixtures().join(dir)).unwrap() {
                let p = e.unwrap().path();
                if p.extension().is_none_or(|x| x != "litmus") {
                    continue;
                }
                let f = parse(&std::fs::read_to_string(&p).unwrap()).unwrap();
                if kinds.lines.iter().any(|(n, _, _, _)| *n == f.name) {
                    assert!(kinds.lookup(&f).is_some(), "{}", p.display());
                    judged += 1;
                }
            }
            assert!(judged >= 28, "{dir}: {judged}");
        }
    }

    /// The `aarch64-mixed` catalogue: every test translates (offsets inside a location, typed
    /// registers, every width), and its 12 kinds lines are matched by name and digest.
    #[test]
    fn mixed_catalogue_translates_and_is_judged() {
        let kinds = mixed_kinds();
        let (mut n, mut judged) = (0, 0);
        for e in std::fs::read_dir(fixtures().join("aarch64-mixed")).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|x| x != "litmus") {
                continue;
            }
            let src = std::fs::read_to_string(&p).unwrap();
            let f = parse(&src).unwrap();
            let t =
                translate(&f, &src, &[&kinds]).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            n += 1;
            if t.model != Kind::Unknown {
                judged += 1;
                assert!(t.rule.contains("aarch64-mixed"), "{}", t.rule);
            }
        }
        assert_eq!((n, judged), (20, 12));
        // Offsets inside a location pass to the assembler unchanged.
        let f = parse(
            &std::fs::read_to_string(fixtures().join("aarch64-mixed/MP-Koeln.litmus")).unwrap(),
        )
        .unwrap();
        let t = translate_thread(&f, 1).unwrap();
        assert_eq!(t.lines[0], "ADD {r0:x},{r1:x},#1");
        assert_eq!(t.lines[1], "LDARB {r2:w},[{r0:x}]");
    }

    #[test]
    fn same_name_other_code_is_not_judged_by_the_catalogue() {
        let kinds = catalogue_kinds(FileArch::X86_64);
        let src = std::fs::read_to_string(fixtures().join("x86_64/SB.litmus")).unwrap();
        let f = parse(&src).unwrap();
        assert_eq!(kinds.lookup(&f), Some(Kind::Allowed));
        let other = parse(&src.replace("movl $1,(y)", "movl $2,(y)")).unwrap();
        assert_ne!(digest(&other), digest(&f));
        assert_eq!(kinds.lookup(&other), None);
        // Layout, comments and the doc string do not change the digest.
        let relaid = parse(&src.replace("movl (y),%eax", "movl  (y),%eax (* c *)")).unwrap();
        assert_eq!(digest(&relaid), digest(&f));
    }
}
