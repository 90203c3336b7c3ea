//! The text side shared by the image and the host: the normalised text of a test and its
//! digest (how a kinds line is tied to one text), and register names as a condition spells them.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::parse::{Atom, FileArch, LitmusFile};
use crate::Kind;

/// The canonical name of register `r` as the condition spells it: AArch64 `W3`/`x3` → `X3`;
/// x86-64 `eax`/`EAX`/`al` → `rax`, `r8d` → `r8`. Other names are returned unchanged.
pub fn canonical_reg(arch: FileArch, r: &str) -> String {
    let l = r.to_ascii_lowercase();
    match arch {
        FileArch::AArch64 => {
            let b = l.as_bytes();
            if (b.first() == Some(&b'x') || b.first() == Some(&b'w'))
                && b.len() > 1
                && b[1..].iter().all(|c| c.is_ascii_digit())
            {
                format!("X{}", &l[1..])
            } else {
                r.to_string()
            }
        }
        FileArch::X86_64 => x86_family(&l).map(String::from).unwrap_or(l),
    }
}

/// The 64-bit name of an x86-64 general register of any width, e.g. `ax` → `rax`.
pub fn x86_family(r: &str) -> Option<&'static str> {
    const LEGACY: [(&str, [&str; 4]); 8] = [
        ("rax", ["rax", "eax", "ax", "al"]),
        ("rbx", ["rbx", "ebx", "bx", "bl"]),
        ("rcx", ["rcx", "ecx", "cx", "cl"]),
        ("rdx", ["rdx", "edx", "dx", "dl"]),
        ("rsi", ["rsi", "esi", "si", "sil"]),
        ("rdi", ["rdi", "edi", "di", "dil"]),
        ("rbp", ["rbp", "ebp", "bp", "bpl"]),
        ("rsp", ["rsp", "esp", "sp", "spl"]),
    ];
    const HIGH: [&str; 8] = ["r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];
    for (fam, names) in LEGACY {
        if names.contains(&r) {
            return Some(fam);
        }
    }
    for fam in HIGH {
        if let Some(rest) = r.strip_prefix(fam) {
            if matches!(rest, "" | "d" | "w" | "b") {
                return Some(fam);
            }
        }
    }
    None
}

/// The test's text normalised for matching against a kinds file's digest: architecture, init
/// items, thread code (each instruction's white space collapsed, upper case) and condition,
/// printed canonically. Name, doc string, `Key=value` lines, comments and layout do not count.
pub fn normalised(f: &LitmusFile) -> String {
    let mut s = String::new();
    s.push_str(f.arch.word());
    s.push('\n');
    let mut init: Vec<String> = f
        .init
        .iter()
        .map(|i| {
            format!(
                "{}{}={}",
                i.ty.as_deref().map(|t| format!("{t} ")).unwrap_or_default(),
                match &i.target {
                    Atom::Loc(l) => l.clone(),
                    Atom::Reg { thread, reg } => format!("{thread}:{}", canonical_reg(f.arch, reg)),
                },
                i.value
            )
        })
        .collect();
    init.sort();
    s.push_str(&init.join(";"));
    s.push('\n');
    for t in &f.threads {
        s.push_str(&format!("P{}:", t.id));
        for (ins, _) in &t.code {
            s.push_str(&normalised_instruction(ins));
            s.push(';');
        }
        s.push('\n');
    }
    let mut locs: Vec<String> = f.locations.iter().map(|a| a.to_string()).collect();
    locs.sort();
    s.push_str(&locs.join(";"));
    s.push('\n');
    s.push_str(&f.cond.to_string());
    s
}

/// One instruction with white space collapsed to single spaces and dropped next to `,`, `[`,
/// `]`, `(`, `)`, upper case: `ldr w0, [ x1 ]` and `LDR W0,[X1]` are the same.
fn normalised_instruction(ins: &str) -> String {
    let words: Vec<&str> = ins.split_whitespace().collect();
    let joined = words.join(" ").to_ascii_uppercase();
    let b: Vec<char> = joined.chars().collect();
    let tight = |c: char| matches!(c, ',' | '[' | ']' | '(' | ')');
    let mut out = String::new();
    for (i, &c) in b.iter().enumerate() {
        if c == ' ' {
            let prev = i.checked_sub(1).map(|j| b[j]);
            let next = b.get(i + 1).copied();
            if prev.is_some_and(tight) || next.is_some_and(tight) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// Digest of [`normalised`]: CRC-32 (crc32fast, already a dependency), eight hex digits. It only
/// tells a catalogue test from a same-named test with other code.
pub fn digest(f: &LitmusFile) -> String {
    format!("{:08x}", crc32fast::hash(normalised(f).as_bytes()))
}

/// A kinds file line's verdict word, herd7 spelling (`Allow`/`Allowed`, `Forbid`/`Forbidden`,
/// `Require`/`Required`).
pub fn kind_verdict(word: &str) -> Option<Kind> {
    match word {
        "Allow" | "Allowed" => Some(Kind::Allowed),
        "Forbid" | "Forbidden" => Some(Kind::Forbidden),
        "Require" | "Required" => Some(Kind::Required),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    const SRC: &str = "AArch64 T\n{ uint8_t z=3; 0:X1=x; 1:X1=x; 1:X5=7; }\n P0 | P1 ;\n \
        MOV W0,#1 | LDR W0,[X1] ;\n STR W0,[X1] | MOV X2,X1 ;\n\
        locations [z;]\nexists (1:X0=1 /\\ 1:X2=x /\\ ~[x]=0)\n";

    #[test]
    fn digest_ignores_layout_and_comments_not_code() {
        let a = parse::parse(SRC).unwrap();
        let b = parse::parse(&SRC.replace("MOV W0,#1 |", "MOV   W0, #1 (* one *) |")).unwrap();
        let c = parse::parse(&SRC.replace("MOV W0,#1 |", "MOV W0,#2 |")).unwrap();
        assert_eq!(digest(&a).len(), 8);
        assert_ne!(digest(&a), digest(&c));
        assert_eq!(digest(&a), digest(&b));
        assert_eq!(normalised_instruction("ldr  w0, [ x1 ]"), "LDR W0,[X1]");
    }

    #[test]
    fn register_names() {
        assert_eq!(canonical_reg(FileArch::AArch64, "w3"), "X3");
        assert_eq!(canonical_reg(FileArch::AArch64, "XZR"), "XZR");
        assert_eq!(canonical_reg(FileArch::X86_64, "EAX"), "rax");
        assert_eq!(canonical_reg(FileArch::X86_64, "r9d"), "r9");
        assert_eq!(x86_family("sil"), Some("rsi"));
        assert_eq!(x86_family("ah"), None);
    }
}
