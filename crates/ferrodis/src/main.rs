#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if std::env::var_os("FERRODIS_CHECK_KEYS").is_some_and(|v| v == "1") {
        ferrodis::keyspace::declared::enable();
    }
    // Startup loading can run scripts (AOF, function libraries): give it a script thread's stack.
    let code = std::thread::Builder::new()
        .name("ferrodis-main".into())
        .stack_size(ferrodis::scripting::sandbox::WORKER_STACK_BYTES)
        .spawn(move || ferrodis::run(&argv))
        .map(|h| h.join().unwrap_or(1))
        .unwrap_or_else(|e| {
            eprintln!("Can't start the main thread: {e}");
            1
        });
    std::process::exit(code);
}
