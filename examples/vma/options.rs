//! The vma example's command line: the options it takes, the usage text
//! (one line per option) and the parser. Shared by the example (`main.rs`)
//! and its test (`tests/vma_help.rs`).

use crate::mm::{Exit, Retire, DEFAULT_CAP};

/// Every option the example takes, as (name, value, what it does). The
/// usage prints one line per entry, and the parser accepts exactly these,
/// each followed by its value, plus `-h`/`--help`.
pub const OPTIONS: &[(&str, &str, &str)] = &[
    (
        "--teardown",
        "direct|batch|per-object|capped|all",
        "how the process exits (default all: each strategy in turn)",
    ),
    (
        "--munmap",
        "batch|per-object|synchronize|capped",
        "how munmap retires the VMAs it removes (default batch)",
    ),
    (
        "--cap",
        "N",
        "VMAs per registration in the capped modes, within one munmap or exit (default 32)",
    ),
    ("--threads", "N", "fault threads (default 2)"),
    ("--vmas", "N", "VMAs mapped at start (default 10000)"),
    ("--ops", "N", "munmap+mmap pairs (default 2000)"),
    ("--seed", "N", "seed of the random addresses (default 1)"),
    (
        "--reader-us",
        "N",
        "during exit, another mm's readers hold sections of N µs (default 100; 0: single faults)",
    ),
];

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Run the demo with these options.
    Run(Options),
    /// `-h` or `--help`: print the usage and exit successfully.
    Help,
}

#[derive(Debug)]
pub struct Options {
    pub teardown: Vec<Exit>,
    pub munmap: Retire,
    pub cap: usize,
    pub reader_us: u64,
    pub threads: usize,
    pub vmas: u64,
    pub ops: u64,
    pub seed: u64,
}

/// The usage text: a synopsis, then one line per option.
pub fn usage() -> String {
    let width = OPTIONS
        .iter()
        .map(|(name, value, _)| name.len() + 1 + value.len())
        .max()
        .unwrap_or(0);
    let mut text = String::from(
        "usage: cargo run --release --example vma [-- OPTIONS]\n\
         \n\
         Options:\n",
    );
    for (name, value, what) in OPTIONS {
        let option = format!("{name} {value}");
        text.push_str(&format!("  {option:width$}  {what}\n"));
    }
    text.push_str(&format!(
        "  {:width$}  print this help and exit\n",
        "-h, --help"
    ));
    text
}

/// Parses the arguments (without the program name). `-h` or `--help`
/// anywhere asks for the usage; otherwise every argument is an option of
/// [`OPTIONS`] followed by its value (the last one given wins).
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Command, String> {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    if args.iter().any(|&a| a == "-h" || a == "--help") {
        return Ok(Command::Help);
    }
    let mut given: Vec<(&str, &str)> = Vec::new();
    let mut rest = args.iter();
    while let Some(&name) = rest.next() {
        if !OPTIONS.iter().any(|(known, _, _)| *known == name) {
            return Err(format!("unknown option {name:?}"));
        }
        let value = rest.next().ok_or_else(|| format!("{name} needs a value"))?;
        given.push((name, value));
    }
    let value = |name: &str| -> Option<&str> {
        debug_assert!(OPTIONS.iter().any(|(known, _, _)| *known == name));
        given
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    };
    let number = |name: &str, default: u64| -> Result<u64, String> {
        value(name).map_or(Ok(default), |v| {
            v.parse()
                .map_err(|_| format!("{name} takes a number, got {v:?}"))
        })
    };
    let cap = number("--cap", DEFAULT_CAP as u64)?;
    if cap == 0 {
        return Err("--cap takes a number of VMAs per registration, at least 1".into());
    }
    let cap = usize::try_from(cap).unwrap_or(usize::MAX);
    let teardown = match value("--teardown").unwrap_or("all") {
        "all" => Exit::all(cap).to_vec(),
        name => vec![Exit::parse(name, cap).ok_or_else(|| {
            format!("--teardown takes direct, batch, per-object, capped or all, got {name:?}")
        })?],
    };
    let name = value("--munmap").unwrap_or("batch");
    let munmap = Retire::parse(name, cap).ok_or_else(|| {
        format!("--munmap takes batch, per-object, synchronize or capped, got {name:?}")
    })?;
    Ok(Command::Run(Options {
        teardown,
        munmap,
        cap,
        threads: number("--threads", 2)?.max(1) as usize,
        vmas: number("--vmas", 10_000)?.max(1),
        ops: number("--ops", 2_000)?,
        seed: number("--seed", 1)?,
        reader_us: number("--reader-us", 100)?,
    }))
}
