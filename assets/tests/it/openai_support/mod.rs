//! The OpenAI-wire test servers (stdlib Python, loopback): `server.py` (in this folder) for the evals,
//! `examples/agents/model_server.py` for the agents. Each prints its port first, counts requests
//! (`GET /stats`) and stops on drop.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

/// A running test server, stopped on drop.
pub struct Server {
    child: Child,
    /// Its base URL (`http://127.0.0.1:PORT/v1`).
    pub url: String,
}

impl Server {
    /// Starts `script` (relative to the workspace) with `key` as the only key it accepts.
    pub fn start(script: &str, key: &str) -> Server {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(script);
        let mut child = Command::new("python3")
            .arg(script)
            .env("SPINE_TEST_OPENAI_KEY", key)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().parse().expect("the server prints its port");
        Server {
            child,
            url: format!("http://127.0.0.1:{port}/v1"),
        }
    }

    /// `GET /stats`.
    pub fn stats(&self) -> serde_json::Value {
        self.call(&["GET", "/stats", ""])
    }

    /// Requests answered so far.
    pub fn requests(&self) -> i64 {
        self.stats()["requests"].as_i64().unwrap()
    }

    /// `POST /control` with `body` (what the server does next).
    pub fn control(&self, body: serde_json::Value) {
        self.call(&["POST", "/control", &body.to_string()]);
    }

    fn call(&self, args: &[&str]) -> serde_json::Value {
        let base = self.url.trim_end_matches("/v1");
        let out = Command::new("python3")
            .args(["-c", "import sys, urllib.request\nm, p, b = sys.argv[1:4]\nr = urllib.request.Request(sys.argv[4] + p, data=b.encode() if m == 'POST' else None, method=m)\nsys.stdout.write(urllib.request.urlopen(r).read().decode())"])
            .args(args)
            .arg(base)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
