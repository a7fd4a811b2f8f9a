//! The VMA example's command line (`examples/vma/options.rs`): `-h` and
//! `--help` ask for the usage (the example prints it and exits 0), the usage
//! has one line per option, and it names every option the parser takes.
//! Examples cannot be linked from tests, so, as in `tests/examples.rs`, the
//! example's sources are included as modules.

#[path = "../examples/vma/mm.rs"]
mod mm;
#[path = "../examples/vma/options.rs"]
mod options;

use mm::{Exit, Retire};
use options::{parse, usage, Command, Options, OPTIONS};

fn run(args: &[&str]) -> Options {
    match parse(args) {
        Ok(Command::Run(options)) => options,
        other => panic!("{args:?} should run, got {other:?}"),
    }
}

#[test]
fn help_and_h_ask_for_the_usage() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["--ops", "5", "--help"],
        &["-h", "--threads"],
    ] {
        assert!(
            matches!(parse(args), Ok(Command::Help)),
            "{args:?} should ask for help"
        );
    }
}

#[test]
fn usage_has_one_line_per_option() {
    let usage = usage();
    let lines: Vec<&str> = usage.lines().collect();
    for (name, value, what) in OPTIONS {
        let found: Vec<&&str> = lines
            .iter()
            .filter(|l| l.trim_start().starts_with(&format!("{name} ")))
            .collect();
        assert_eq!(found.len(), 1, "{name} in:\n{usage}");
        assert!(found[0].contains(value) && found[0].contains(what));
    }
    assert!(lines
        .iter()
        .any(|l| l.trim_start().starts_with("-h, --help")));
}

/// Each option the usage names is taken by the parser and changes what the
/// example runs; anything else is refused.
#[test]
fn usage_names_every_option_the_parser_takes() {
    let defaults = run(&[]);
    assert_eq!(defaults.teardown, Exit::all(32));
    assert_eq!(defaults.munmap, Retire::Batch);
    assert_eq!(
        (defaults.cap, defaults.threads, defaults.vmas, defaults.ops),
        (32, 2, 10_000, 2_000)
    );
    assert_eq!((defaults.seed, defaults.reader_us), (1, 100));
    let samples = [
        ("--teardown", "capped"),
        ("--munmap", "synchronize"),
        ("--cap", "8"),
        ("--threads", "3"),
        ("--vmas", "50"),
        ("--ops", "7"),
        ("--seed", "9"),
        ("--reader-us", "0"),
    ];
    let usage = usage();
    for (name, _, _) in OPTIONS {
        assert!(usage.contains(name));
        let (_, value) = samples
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no sample value for {name}: add one"));
        let changed = run(&[name, value]);
        assert_ne!(
            format!("{changed:?}"),
            format!("{defaults:?}"),
            "{name} {value} changed nothing"
        );
    }
    assert_eq!(samples.len(), OPTIONS.len());
    assert_eq!(
        run(&["--cap", "8", "--teardown", "capped"]).teardown,
        [Exit::Capped(8)]
    );
    assert_eq!(
        run(&["--munmap", "capped", "--cap", "4"]).munmap,
        Retire::Capped(4)
    );

    for bad in [
        &["--unknown", "1"][..],
        &["--ops"],
        &["--ops", "many"],
        &["--cap", "0"],
        &["--teardown", "never"],
        &["--munmap", "never"],
        &["200"],
    ] {
        assert!(parse(bad).is_err(), "{bad:?} should be refused");
    }
}
