//! `assets`: the Spine command line. Parses arguments, calls the engine, prints. Exit codes: 0 success,
//! 1 the work failed, 2 bad usage or an invalid project.

mod cli;
mod cmd;
mod output;

use clap::Parser;
pub use cli::*;

/// glibc malloc fragments badly under DataFusion's and the loader's allocation patterns; mimalloc halves
/// allocation time (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Behave like other Unix tools when the reader of stdout goes away (`assets runs | head`): exit
    // quietly (status 141, as SIGPIPE would) instead of panicking. SIGPIPE itself stays ignored (Rust's
    // default): with its default disposition a write to a connection the peer reset (an S3 server
    // going away mid-upload: hyper's vectored writes carry no MSG_NOSIGNAL) would kill the process
    // in the middle of a run, with nothing recorded.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
    let cli = Cli::parse();
    if let Err(e) = cmd::vars::apply(cli.target.as_deref(), cli.vars.as_deref()) {
        eprintln!("{}", cmd::render_error(&e));
        return ExitCode::from(cmd::exit_code(&e));
    }
    cmd::telemetry::init(cli.log_format, cli.verbose);
    // Deep SQL plans (thousands of UNION ALL terms) recurse in DataFusion's planner and optimizer:
    // worker threads get 64 MiB stacks (reserved address space; only touched pages are committed).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(64 * 1024 * 1024)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    // Run on a worker thread: they have the large stacks configured above.
    let result = runtime.block_on(async {
        tokio::spawn(cmd::dispatch(cli))
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("internal error: {e}")))
    });
    match result {
        Ok(code) => ExitCode::from(code),
        // A streamed listing whose reader went away (`assets logs RUN | head`): as above.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::from(141)
        }
        Err(e) => {
            let code = cmd::exit_code(&e);
            eprintln!("{}", cmd::render_error(&e));
            ExitCode::from(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// docs/reference/cli.md cannot drift from the definitions above: every command, every long flag
    /// and every short flag that `--help` shows is named there.
    #[test]
    fn cli_reference_names_every_command_and_flag() {
        let doc = include_str!("../../docs/reference/cli.md");
        let cli = Cli::command();
        let mut missing = Vec::new();
        let check_args = |cmd: &clap::Command, missing: &mut Vec<String>| {
            for a in cmd.get_arguments() {
                if a.is_hide_set() {
                    continue;
                }
                if let Some(l) = a.get_long() {
                    if !doc.contains(&format!("--{l}")) {
                        missing.push(format!("{} --{l}", cmd.get_name()));
                    }
                }
                if let Some(s) = a.get_short() {
                    if !doc.contains(&format!("-{s}")) {
                        missing.push(format!("{} -{s}", cmd.get_name()));
                    }
                }
            }
        };
        check_args(&cli, &mut missing);
        for sub in cli.get_subcommands() {
            if sub.get_name() != "help" && !doc.contains(&format!("`{}", sub.get_name())) {
                missing.push(format!("command {}", sub.get_name()));
            }
            check_args(sub, &mut missing);
        }
        assert!(
            missing.is_empty(),
            "docs/reference/cli.md does not mention: {missing:?}"
        );
        cli.debug_assert();
    }
}
