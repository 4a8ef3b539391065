//! The `roundel` binary: a thin shell around [`roundel::cli`].

fn main() -> std::process::ExitCode {
    roundel::cli::main()
}
