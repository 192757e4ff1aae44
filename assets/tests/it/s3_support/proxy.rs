//! A TCP proxy in front of the S3 server, for fault tests: it forwards bytes both ways, and on demand
//! takes the server away (every open connection is cut, new ones are closed at once) or throttles it
//! (the next N connections get `503 SlowDown`, as S3 answers when it sheds load).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct State {
    down: AtomicBool,
    throttle: AtomicUsize,
    throttled: AtomicUsize,
    to_server: AtomicU64,
    open: Mutex<Vec<TcpStream>>,
}

/// A running proxy; it stops with the test process.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    state: Arc<State>,
}

impl Proxy {
    /// A proxy to `upstream` (`http://host:port`) on a free loopback port.
    pub fn start(upstream: &str) -> Proxy {
        let target = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("proxy address"));
        let state = Arc::new(State::default());
        let s = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let s = s.clone();
                let target = target.clone();
                std::thread::spawn(move || serve(client, &target, &s));
            }
        });
        Proxy { endpoint, state }
    }

    /// Takes the server away: open connections are cut, new ones closed until [`Proxy::up`].
    pub fn down(&self) {
        self.state.down.store(true, Ordering::SeqCst);
        for c in self.state.open.lock().expect("proxy lock").drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    /// Brings the server back.
    pub fn up(&self) {
        self.state.down.store(false, Ordering::SeqCst);
    }

    /// The next `n` connections are answered `503 SlowDown` and closed.
    pub fn throttle(&self, n: usize) {
        self.state.throttle.store(n, Ordering::SeqCst);
    }

    /// How many connections were throttled so far.
    pub fn throttled(&self) -> usize {
        self.state.throttled.load(Ordering::SeqCst)
    }

    /// Bytes forwarded to the server so far.
    pub fn bytes_to_server(&self) -> u64 {
        self.state.to_server.load(Ordering::SeqCst)
    }
}

fn serve(mut client: TcpStream, target: &str, state: &State) {
    if state.down.load(Ordering::SeqCst) {
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    let take = state
        .throttle
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    if take.is_ok() {
        // Read the request head, answer as S3 does under load, and close.
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match client.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
        let _ = write!(
            client,
            "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        state.throttled.fetch_add(1, Ordering::SeqCst);
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    let Ok(server) = TcpStream::connect(target) else {
        return;
    };
    {
        let mut open = state.open.lock().expect("proxy lock");
        for s in [&client, &server] {
            if let Ok(c) = s.try_clone() {
                open.push(c);
            }
        }
    }
    let (Ok(mut client_r), Ok(mut server_w)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut buf = [0u8; 64 * 1024];
            loop {
                match client_r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if server_w.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        state.to_server.fetch_add(n as u64, Ordering::SeqCst);
                    }
                }
            }
            let _ = server_w.shutdown(Shutdown::Write);
        });
        let mut server_r = server;
        let _ = std::io::copy(&mut server_r, &mut client);
        let _ = client.shutdown(Shutdown::Both);
    });
}
