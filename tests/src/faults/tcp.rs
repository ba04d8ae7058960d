//! A TCP proxy between the SDK and the emulator with switchable, seeded toxics, like
//! Toxiproxy's: latency with jitter, a blackhole, resets, slow closes, refused connections and a
//! bandwidth limit. Switch them from the test while calls run: `proxy.set(Toxic::Reset)`.
//!
//! Latency, bandwidth and slow close act on the data flowing back from the emulator (Toxiproxy's
//! `downstream`, its default); a blackhole swallows both directions; a reset or refusal ends
//! every open connection with an RST.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::Dice;

/// What the proxy does to connections and their data.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub enum Toxic {
    /// Forward everything as it comes.
    #[default]
    None,
    /// Hold each chunk from the emulator for `latency` plus up to `jitter` (seeded).
    Latency {
        /// The fixed part of the delay.
        latency: Duration,
        /// The most added to it, uniformly at random.
        jitter: Duration,
    },
    /// Accept connections and data, forward nothing, answer nothing: calls hang until their
    /// timeout.
    Blackhole,
    /// Reset open connections and every new one as soon as it is accepted (RST, not FIN).
    Reset,
    /// When the emulator closes a connection, wait `delay` before closing it to the client.
    SlowClose {
        /// How long the close is held back.
        delay: Duration,
    },
    /// Close the listening socket (connecting fails with "connection refused") and reset open
    /// connections, until another toxic is set; the same port is listened on again then.
    Refuse,
    /// Deliver at most `bytes_per_second` from the emulator.
    Bandwidth {
        /// The rate.
        bytes_per_second: u64,
    },
}

/// The proxy; it stops, resetting its connections, when dropped.
#[derive(Debug)]
pub struct TcpFaultProxy {
    address: SocketAddr,
    toxic: watch::Sender<Toxic>,
    stats: Arc<Stats>,
    _stop: DropGuard,
}

#[derive(Debug, Default)]
struct Stats {
    accepted: AtomicU64,
    resets: AtomicU64,
}

/// Largest chunk read at once (a bandwidth limit also paces within a chunk).
const CHUNK: usize = 16 * 1024;

impl TcpFaultProxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream`, with no toxic.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start(upstream: SocketAddr, seed: u64) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (toxic, watching) = watch::channel(Toxic::None);
        let stats = Arc::new(Stats::default());
        let stop = CancellationToken::new();
        let acceptor = Acceptor {
            address,
            upstream,
            seed,
            toxic: watching,
            stats: stats.clone(),
            stop: stop.clone(),
        };
        tokio::spawn(acceptor.run(listener));
        Ok(Self {
            address,
            toxic,
            stats,
            _stop: stop.drop_guard(),
        })
    }

    /// Starts a proxy in front of an `http://host:port` endpoint (moto's).
    ///
    /// # Errors
    /// When the endpoint is not an address, or no port can be bound.
    pub async fn start_for(endpoint: &str, seed: u64) -> std::io::Result<Self> {
        let upstream = endpoint
            .strip_prefix("http://")
            .unwrap_or(endpoint)
            .trim_end_matches('/')
            .parse()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Self::start(upstream, seed).await
    }

    /// Where the proxy listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:PORT`, the endpoint to give the SDK.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Switches the toxic; open connections see it from their next chunk (a reset or refusal
    /// at once).
    pub fn set(&self, toxic: Toxic) {
        self.toxic.send_replace(toxic);
    }

    /// How many connections the proxy has accepted.
    pub fn connections(&self) -> u64 {
        self.stats.accepted.load(Ordering::Relaxed)
    }

    /// How many connections it has reset.
    pub fn resets(&self) -> u64 {
        self.stats.resets.load(Ordering::Relaxed)
    }
}

struct Acceptor {
    address: SocketAddr,
    upstream: SocketAddr,
    seed: u64,
    toxic: watch::Receiver<Toxic>,
    stats: Arc<Stats>,
    stop: CancellationToken,
}

impl Acceptor {
    async fn run(mut self, listener: TcpListener) {
        let mut listener = Some(listener);
        loop {
            let refusing = *self.toxic.borrow_and_update() == Toxic::Refuse;
            if refusing {
                // Closing the socket is what makes a connect fail with ECONNREFUSED.
                listener = None;
            } else if listener.is_none() {
                listener = self.rebind().await;
            }
            let accepted = tokio::select! {
                () = self.stop.cancelled() => return,
                changed = self.toxic.changed() => match changed {
                    Ok(()) => continue,
                    Err(_) => return,
                },
                accepted = accept(listener.as_ref()) => accepted,
            };
            let Ok(client) = accepted else { continue };
            let n = self.stats.accepted.fetch_add(1, Ordering::Relaxed);
            let conn = Connection {
                upstream: self.upstream,
                toxic: self.toxic.clone(),
                dice: Dice::new(self.seed, &format!("connection {n}")),
                stats: self.stats.clone(),
                stop: self.stop.clone(),
            };
            tokio::spawn(conn.run(client));
        }
    }

    /// Listens on the same port again after a refusal (retrying while the port is busy).
    async fn rebind(&self) -> Option<TcpListener> {
        loop {
            match TcpListener::bind(self.address).await {
                Ok(l) => return Some(l),
                Err(_) if !self.stop.is_cancelled() => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(_) => return None,
            }
        }
    }
}

async fn accept(listener: Option<&TcpListener>) -> std::io::Result<TcpStream> {
    match listener {
        Some(l) => l.accept().await.map(|(s, _)| s),
        None => std::future::pending().await,
    }
}

struct Connection {
    upstream: SocketAddr,
    toxic: watch::Receiver<Toxic>,
    dice: Dice,
    stats: Arc<Stats>,
    stop: CancellationToken,
}

/// How a proxied connection ended.
#[derive(PartialEq)]
enum End {
    Closed,
    Reset,
}

impl Connection {
    async fn run(mut self, mut client: TcpStream) {
        if self.resetting() {
            self.reset(&client);
            return;
        }
        let Ok(mut server) = TcpStream::connect(self.upstream).await else {
            self.reset(&client);
            return;
        };
        if self.pump(&mut client, &mut server).await == End::Reset {
            self.reset(&client);
            self.reset(&server);
        }
    }

    fn resetting(&mut self) -> bool {
        matches!(
            *self.toxic.borrow_and_update(),
            Toxic::Reset | Toxic::Refuse
        )
    }

    fn reset(&self, stream: &TcpStream) {
        // SO_LINGER 0: the close sends an RST instead of a FIN.
        let _ = stream.set_zero_linger();
        self.stats.resets.fetch_add(1, Ordering::Relaxed);
    }

    /// Moves data both ways, through the toxic, until both sides have closed.
    ///
    /// Delayed chunks wait in `pending` with the time they are due, while reading goes on, so
    /// latency delays each chunk from its arrival (as Toxiproxy does) instead of adding up.
    async fn pump(&mut self, client: &mut TcpStream, server: &mut TcpStream) -> End {
        let (mut client_in, mut client_out) = client.split();
        let (mut server_in, mut server_out) = server.split();
        let (mut up, mut down) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
        let (mut up_open, mut down_open) = (true, true);
        // The emulator has closed: close to the client once `pending` is delivered.
        let mut down_ended = false;
        let mut pending: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
        while up_open || down_open {
            if self.resetting() {
                return End::Reset;
            }
            let toxic = self.toxic.borrow().clone();
            let due = pending.front().map(|(at, _)| *at);
            tokio::select! {
                () = self.stop.cancelled() => return End::Reset,
                changed = self.toxic.changed() => {
                    if changed.is_err() {
                        return End::Reset;
                    }
                }
                read = client_in.read(&mut up), if up_open => match read {
                    Ok(n) if n > 0 => {
                        if toxic != Toxic::Blackhole && server_out.write_all(&up[..n]).await.is_err() {
                            return End::Reset;
                        }
                    }
                    // The client is done sending: pass its close on.
                    _ => {
                        up_open = false;
                        let _ = server_out.shutdown().await;
                    }
                },
                read = server_in.read(&mut down), if down_open && !down_ended => match read {
                    Ok(n) if n > 0 => {
                        let chunk = &down[..n];
                        if let Toxic::Latency { latency, jitter } = toxic {
                            let at = Instant::now() + latency + jitter.mul_f64(self.dice.unit());
                            // Never before an earlier chunk: the stream keeps its order.
                            let at = pending.back().map_or(at, |(last, _)| at.max(*last));
                            pending.push_back((at, chunk.to_vec()));
                        } else if !pending.is_empty() {
                            pending.push_back((Instant::now(), chunk.to_vec()));
                        } else if deliver(chunk, &mut client_out, &toxic).await.is_err() {
                            return End::Reset;
                        }
                    }
                    _ => down_ended = true,
                },
                () = sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    if let Some((_, chunk)) = pending.pop_front()
                        && client_out.write_all(&chunk).await.is_err()
                    {
                        return End::Reset;
                    }
                }
            }
            if down_ended && down_open && pending.is_empty() {
                down_open = false;
                let slow = match *self.toxic.borrow() {
                    Toxic::SlowClose { delay } => Some(delay),
                    _ => None,
                };
                if let Some(delay) = slow {
                    tokio::time::sleep(delay).await;
                }
                let _ = client_out.shutdown().await;
            }
        }
        End::Closed
    }
}

/// Writes a chunk from the emulator to the client through the toxic.
async fn deliver(
    chunk: &[u8],
    out: &mut (impl AsyncWrite + Unpin),
    toxic: &Toxic,
) -> std::io::Result<()> {
    match toxic {
        Toxic::Blackhole => Ok(()),
        Toxic::Bandwidth { bytes_per_second } => {
            let rate = (*bytes_per_second).max(1);
            // Pieces of a tenth of a second each, so the rate holds within a chunk too.
            let piece = usize::try_from(rate / 10).unwrap_or(CHUNK).clamp(1, CHUNK);
            for p in chunk.chunks(piece) {
                out.write_all(p).await?;
                out.flush().await?;
                tokio::time::sleep(Duration::from_secs_f64(p.len() as f64 / rate as f64)).await;
            }
            Ok(())
        }
        // Latency is applied by queueing in `pump`.
        Toxic::None
        | Toxic::Latency { .. }
        | Toxic::Reset
        | Toxic::Refuse
        | Toxic::SlowClose { .. } => out.write_all(chunk).await,
    }
}
