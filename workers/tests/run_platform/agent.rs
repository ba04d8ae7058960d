//! A local stand-in for the ECS agent's task scale-in protection endpoint
//! (`PUT $ECS_AGENT_URI/task-protection/v1/state`), answering as the documented agent does and
//! recording every request with the time it arrived.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request the agent received.
#[derive(Clone, Debug)]
pub struct Request {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub body: serde_json::Value,
}

impl Request {
    /// `Some(true)` for a protect call, `Some(false)` for a release.
    pub fn enabled(&self) -> Option<bool> {
        self.body["ProtectionEnabled"].as_bool()
    }
}

/// How the agent answers.
#[derive(Clone, Copy, Debug)]
pub enum Answers {
    /// 200 with `{"protection": {...}}`.
    Protect,
    /// 200 with `{"failure": {"Reason": "TASK_NOT_VALID", ...}}`, as for a task outside a service.
    TaskNotValid,
}

/// The running agent.
pub struct Agent {
    /// `ECS_AGENT_URI` for it.
    pub uri: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Agent {
    pub async fn start(answers: Answers) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!(
            "http://{}/api/4f0c3d6e-task-protection-test",
            listener.local_addr().unwrap()
        );
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(serve(stream, recorded.clone(), answers));
            }
        });
        Self { uri, requests }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve(mut stream: TcpStream, recorded: Arc<Mutex<Vec<Request>>>, answers: Answers) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head_end, length) = loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before the request's head");
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..i]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            break (i + 4, length);
        }
    };
    while buffer.len() < head_end + length {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before the request's body");
        buffer.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut first = head.lines().next().unwrap().split_whitespace();
    let (method, path) = (first.next().unwrap(), first.next().unwrap());
    let body: serde_json::Value =
        serde_json::from_slice(&buffer[head_end..head_end + length]).unwrap_or_default();
    let enabled = body["ProtectionEnabled"].as_bool().unwrap_or(false);
    recorded.lock().unwrap().push(Request {
        at: Instant::now(),
        method: method.to_owned(),
        path: path.to_owned(),
        body,
    });
    let arn = "arn:aws:ecs:us-east-1:123456789012:task/fleet/4f0c3d6e";
    let json = match answers {
        Answers::Protect => format!(
            r#"{{"protection":{{"ExpirationDate":"2026-12-06T12:00:00Z","ProtectionEnabled":{enabled},"TaskArn":"{arn}"}}}}"#
        ),
        Answers::TaskNotValid => {
            format!(r#"{{"failure":{{"Arn":"{arn}","Reason":"TASK_NOT_VALID","Detail":null}}}}"#)
        }
    };
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
        json.len()
    );
    stream.write_all(response.as_bytes()).await.unwrap();
    let _ = stream.shutdown().await;
}
