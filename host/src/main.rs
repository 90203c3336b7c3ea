//! `atomprobe`: see [`atomprobe::cli`].

fn main() {
    std::process::exit(atomprobe::cli::main());
}
