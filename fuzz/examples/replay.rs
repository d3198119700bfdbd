//! Runs one input file through a harness without libFuzzer, with a normal
//! panic message and backtrace: `cargo run --release --example replay --
//! <target> <file>...`.

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().expect("usage: replay <target> <file>...");
    let run: fn(&[u8]) = match target.as_str() {
        "handshake" => tern_fuzz::handshake::run,
        "transport" => tern_fuzz::transport::run,
        "packet_header" => tern_fuzz::packet_header::run,
        "frame_decode" => tern_fuzz::frame_decode::run,
        "params_decode" => tern_fuzz::params_decode::run,
        "connection" => tern_fuzz::connection::run,
        "stream_decode" => tern_fuzz::stream_decode::run,
        "session" => tern_fuzz::session::run,
        t => panic!("unknown target {t}"),
    };
    for path in args {
        let data = std::fs::read(&path).expect("read input");
        run(&data);
        println!("{path}: ok");
    }
}
