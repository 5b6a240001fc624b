fn main() {
    let args = std::env::args_os().collect();
    let env = std::env::vars_os().collect();
    std::process::exit(envseal::run(args, env));
}
