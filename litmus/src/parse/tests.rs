use super::*;
use alloc::vec;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    // The fixtures stay with the probes crate (its tests and the host tool use them too).
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../probes/tests/fixtures")
}

#[test]
fn parses_every_construct() {
    let src = "AArch64 T+all\n\
        \"Fre PodWR\"\n\
        Hash=0123abcd\n\
        Cycle=Fre PodWR\n\
        (* a comment { with a brace *)\n\
        {\n\
        uint8_t x=1; int y; 0: X1 = x; 0:X2=-3; 1:X3=&y; z=0x10;\n\
        }\n\
        \x20P0          | P1           ;\n\
        \x20MOV W0,#1   | LDR W0,[X3]  ;\n\
        \x20STR W0,[X1] | CBZ W0,L0    ;\n\
        \x20            | L0:          ;\n\
        locations [x; 1:X0;]\n\
        exists\n(1:X0=1 /\\ ~([x]=2 \\/ y=0)) \\/ false\n";
    let f = parse(src).unwrap();
    assert_eq!(f.arch, FileArch::AArch64);
    assert_eq!(f.name, "T+all");
    assert_eq!(f.doc.as_deref(), Some("Fre PodWR"));
    assert_eq!(f.hash(), Some("0123abcd"));
    assert_eq!(f.info[1], ("Cycle".into(), "Fre PodWR".into()));
    assert_eq!(f.init.len(), 6);
    assert_eq!(f.init[0].ty.as_deref(), Some("uint8_t"));
    assert_eq!(f.init[0].target, Atom::Loc("x".into()));
    assert_eq!(f.init[0].value, Value::Int(1));
    assert_eq!(f.init[1].value, Value::Int(0));
    assert_eq!(
        f.init[2].target,
        Atom::Reg {
            thread: 0,
            reg: "X1".into()
        }
    );
    assert_eq!(f.init[2].value, Value::Addr("x".into()));
    assert_eq!(f.init[3].value, Value::Int(-3));
    assert_eq!(f.init[4].value, Value::Addr("y".into()));
    assert_eq!(f.init[5].value, Value::Int(16));
    assert_eq!(f.threads.len(), 2);
    assert_eq!(f.threads[0].code.len(), 2);
    assert_eq!(f.threads[1].code[2].0, "L0:");
    assert_eq!(f.threads[1].code[1].1, Pos { line: 11, col: 16 });
    assert_eq!(
        f.locations,
        vec![
            Atom::Loc("x".into()),
            Atom::Reg {
                thread: 1,
                reg: "X0".into()
            }
        ]
    );
    assert_eq!(f.cond.quant, Quant::Exists);
    assert_eq!(
        f.cond.to_string(),
        "exists ((1:X0=1 /\\ ~([x]=2 \\/ [y]=0)) \\/ false)"
    );
    // 1:X0=1, x=1, y=5: the conjunction holds.
    let val = |a: &Atom| match a {
        Atom::Reg { .. } => 1,
        Atom::Loc(l) if l == "x" => 1,
        Atom::Loc(_) => 5,
    };
    assert!(f.cond.prop.eval(&val, &|_| 0));
    let val2 = |a: &Atom| match a {
        Atom::Loc(l) if l == "y" => 0,
        _ => 1,
    };
    assert!(!f.cond.prop.eval(&val2, &|_| 0));
}

#[test]
fn quantifiers_and_precedence() {
    let base = "X86_64 Q\n{ }\n P0 ;\n movl $1,(x) ;\n";
    let f = parse(&format!("{base}~exists (0:rax=1)\n")).unwrap();
    assert_eq!(f.cond.quant, Quant::NotExists);
    let f = parse(&format!("{base}~ exists (0:rax=1)\n")).unwrap();
    assert_eq!(f.cond.quant, Quant::NotExists);
    let f = parse(&format!("{base}forall 0:rax=0 \\/ 0:rax=1 /\\ [x]=1\n")).unwrap();
    assert_eq!(f.cond.quant, Quant::Forall);
    // `/\` binds tighter than `\/`.
    assert!(matches!(&f.cond.prop, Prop::Or(v) if v.len() == 2 && matches!(v[1], Prop::And(_))));
    let f = parse(&format!("{base}filter 0:rax=1 exists [x]=1\n")).unwrap();
    assert!(f.filter.is_some());
    assert_eq!(f.arch, FileArch::X86_64);
    assert_eq!(f.threads[0].code[0].0, "movl $1,(x)");
}

/// Every malformed fixture is refused at the place named, with what was expected there.
#[test]
fn malformed_files_are_refused_with_position_and_expectation() {
    let cases: &[(&str, usize, usize, &str)] = &[
        ("bad-arch", 1, 1, "`AArch64` or `X86_64`"),
        ("no-name", 1, 8, "the test name"),
        ("doc-unterminated", 2, 1, "closing the doc string"),
        ("bad-info", 2, 1, "`Key=value` line"),
        ("init-unclosed", 3, 2, "closing the init block"),
        ("init-bad-value", 2, 3, "a value"),
        ("init-bad-reg", 2, 3, "a register `P:R`"),
        ("init-no-value", 2, 3, "`= value`"),
        ("thread-name", 3, 7, "`P1`"),
        ("row-cells", 4, 2, "2 cells"),
        ("row-unterminated", 4, 11, "`;` ending the row"),
        ("no-condition", 5, 1, "the final condition"),
        ("cond-missing-term", 5, 19, "a condition term"),
        ("cond-unclosed", 6, 1, "`)` closing"),
        ("cond-no-eq", 5, 14, "`=` after"),
        ("cond-bad-bracket", 5, 10, "a location name"),
        ("cond-trailing", 5, 17, "`/\\`, `\\/` or the end"),
        ("cond-bad-char", 5, 16, "`/\\`, `\\/`, `~`"),
        ("locations-bracket", 5, 11, "`[` after `locations`"),
        ("comment-unterminated", 2, 1, "`*)`"),
        ("no-threads", 3, 1, "the thread header row"),
    ];
    let dir = fixtures().join("litmus-bad");
    let count = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(
        count,
        cases.len(),
        "one case per fixture in {}",
        dir.display()
    );
    for (file, line, col, expected) in cases {
        let path = dir.join(format!("{file}.litmus"));
        let src = std::fs::read_to_string(&path).unwrap();
        let e = parse(&src).expect_err(file);
        let shown = e.display(&format!("{file}.litmus"));
        assert!(
            e.expected.contains(expected),
            "{file}: expected text {expected:?} not in {shown}"
        );
        assert_eq!((e.pos.line, e.pos.col), (*line, *col), "{file}: {shown}");
        assert!(shown.starts_with(&format!("{file}.litmus:{line}:{col}: expected ")));
    }
}

/// Every file of the shipped herdtools7 catalogue copies parses.
#[test]
fn every_catalogue_file_parses() {
    for (arch, n) in [("aarch64", 80), ("x86_64", 28)] {
        let dir = fixtures().join("litmus").join(arch);
        let mut parsed = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|x| x != "litmus") {
                continue;
            }
            let src = std::fs::read_to_string(&p).unwrap();
            let f =
                parse(&src).unwrap_or_else(|e| panic!("{}", e.display(&p.display().to_string())));
            assert!(!f.name.is_empty());
            assert!(!f.threads.is_empty());
            parsed += 1;
        }
        assert_eq!(parsed, n, "{arch}");
    }
}

#[test]
fn integers_up_to_u64_max() {
    assert_eq!(parse_int("0xffffffffffffffff"), Some(-1));
    assert_eq!(parse_int("18446744073709551615"), Some(-1));
    assert_eq!(parse_int("0x2222222222222222"), Some(0x2222222222222222));
    assert_eq!(parse_int("-0x8000000000000000"), Some(i64::MIN));
    assert_eq!(parse_int("-0x8000000000000001"), None);
    assert_eq!(parse_int("0x1ffffffffffffffff"), None);
    assert_eq!(parse_int("-3"), Some(-3));
}

/// Every file of herdtools7's `aarch64-mixed` catalogue parses: typed registers
/// (`uint16_t 1:X3;`), `x=0x0402` atoms without brackets, `forall` without parentheses.
#[test]
fn mixed_catalogue_parses() {
    let dir = fixtures().join("litmus/aarch64-mixed");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "litmus") {
            let src = std::fs::read_to_string(&p).unwrap();
            parse(&src).unwrap_or_else(|e| panic!("{}", e.display(&p.display().to_string())));
            n += 1;
        }
    }
    assert_eq!(n, 20);
    let f = parse(&std::fs::read_to_string(dir.join("SmallEndian.litmus")).unwrap()).unwrap();
    assert_eq!(f.cond.quant, Quant::Forall);
    assert_eq!(f.cond.to_string(), "forall ([x]=131073)");
}
