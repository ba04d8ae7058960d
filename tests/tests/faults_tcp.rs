//! The TCP fault proxy between the SDK and moto: each toxic, switched on while the client is in
//! use, fails calls the way the engine classifies them (timeouts and network errors retryable),
//! and calls succeed again once it is switched off. Slow close and bandwidth are measured on raw
//! sockets, where their timing is visible.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet_bus::aws::SqsTransport;
use fleet_bus::scenarios::unique_name;
use fleet_bus::{BusError, Declaration, QueueDecl, QueueHandle, ReceiveRequest, Transport};
use fleet_tests::faults::tcp::{TcpFaultProxy, Toxic};
use fleet_tests::faults::{sdk_config_without_retries, seed};
use fleet_tests::moto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ATTEMPT: Duration = Duration::from_secs(2);

/// A proxy in front of moto, a queue on moto, and the queue opened through the proxy.
async fn setup() -> (TcpFaultProxy, QueueHandle) {
    let proxy = TcpFaultProxy::start_for(&moto::moto().endpoint, seed())
        .await
        .unwrap();
    let name = unique_name("tcp");
    moto::transport()
        .await
        .declare(&Declaration::Queue(&QueueDecl::new(&name)))
        .await
        .unwrap();
    let config = sdk_config_without_retries(&proxy.endpoint(), ATTEMPT).await;
    let q = SqsTransport::new(&config).queue(&name).await.unwrap();
    (proxy, q)
}

async fn receive(q: &QueueHandle) -> Result<usize, BusError> {
    let request = ReceiveRequest::new(10, Duration::ZERO);
    q.queue().receive(&request).await.map(|m| m.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_delays_calls_by_at_least_its_fixed_part() {
    let (proxy, q) = setup().await;
    proxy.set(Toxic::Latency {
        latency: Duration::from_millis(400),
        jitter: Duration::from_millis(100),
    });
    let started = Instant::now();
    assert_eq!(receive(&q).await.unwrap(), 0);
    let slow = started.elapsed();
    assert!(slow >= Duration::from_millis(400), "{slow:?}");
    assert!(slow < ATTEMPT, "{slow:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackhole_times_calls_out_and_they_recover_after() {
    let (proxy, q) = setup().await;
    proxy.set(Toxic::Blackhole);
    let started = Instant::now();
    let e = receive(&q).await.unwrap_err();
    assert!(started.elapsed() >= ATTEMPT, "{:?}", started.elapsed());
    assert_eq!(e.code(), Some("RequestTimeout"), "{e:?}");
    assert!(e.is_retryable(), "{e}");
    assert_eq!(e.error_type(), "timeout");

    proxy.set(Toxic::None);
    assert_eq!(receive(&q).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_is_a_retryable_network_error() {
    let (proxy, q) = setup().await;
    proxy.set(Toxic::Reset);
    let e = receive(&q).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(e.error_type(), "network", "{e:?}");
    assert!(proxy.resets() >= 1);

    proxy.set(Toxic::None);
    assert_eq!(receive(&q).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_fail_fast_until_the_port_listens_again() {
    let (proxy, q) = setup().await;
    proxy.set(Toxic::Refuse);
    // Let the acceptor close its socket.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let accepted = proxy.connections();
    let started = Instant::now();
    let e = receive(&q).await.unwrap_err();
    assert!(started.elapsed() < ATTEMPT, "{:?}", started.elapsed());
    assert_eq!(e.code(), Some("NetworkError"), "{e:?}");
    assert!(e.is_retryable(), "{e}");
    assert!(
        TcpStream::connect(proxy.address()).await.is_err(),
        "the port is closed"
    );
    assert_eq!(proxy.connections(), accepted);

    proxy.set(Toxic::None);
    let back = Instant::now();
    loop {
        match receive(&q).await {
            Ok(n) => break assert_eq!(n, 0),
            Err(e) if back.elapsed() < Duration::from_secs(5) => {
                assert!(e.is_retryable(), "{e:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the proxy listens again: {e:?}"),
        }
    }
    assert!(proxy.connections() > accepted);
}

/// A raw upstream that answers each connection with `bytes` and closes it.
async fn raw_upstream(bytes: usize) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let payload = Arc::new(vec![b'x'; bytes]);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let payload = payload.clone();
            tokio::spawn(async move {
                let _ = s.write_all(&payload).await;
                let _ = s.shutdown().await;
            });
        }
    });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_close_holds_the_end_of_the_stream_back() {
    let upstream = raw_upstream(5).await;
    let proxy = TcpFaultProxy::start(upstream, seed()).await.unwrap();
    proxy.set(Toxic::SlowClose {
        delay: Duration::from_millis(600),
    });
    let mut s = TcpStream::connect(proxy.address()).await.unwrap();
    let mut first = [0u8; 5];
    s.read_exact(&mut first).await.unwrap();
    let data_at = Instant::now();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    let held = data_at.elapsed();
    assert!(held >= Duration::from_millis(500), "{held:?}");

    proxy.set(Toxic::None);
    let started = Instant::now();
    let mut s = TcpStream::connect(proxy.address()).await.unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).await.unwrap();
    assert_eq!(all.len(), 5);
    assert!(started.elapsed() < Duration::from_millis(300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bandwidth_limit_paces_what_comes_back() {
    let upstream = raw_upstream(60_000).await;
    let proxy = TcpFaultProxy::start(upstream, seed()).await.unwrap();
    proxy.set(Toxic::Bandwidth {
        bytes_per_second: 100_000,
    });
    let started = Instant::now();
    let mut all = Vec::new();
    TcpStream::connect(proxy.address())
        .await
        .unwrap()
        .read_to_end(&mut all)
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(all.len(), 60_000);
    // 60 kB at 100 kB/s: about 0.6 s.
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(proxy.connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_delays_each_chunk_from_its_arrival_without_adding_up() {
    // An upstream that writes five small chunks 50 ms apart, then closes.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        for i in 0..5u8 {
            s.write_all(&[b'0' + i]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        s.shutdown().await.unwrap();
    });
    let proxy = TcpFaultProxy::start(upstream, seed()).await.unwrap();
    proxy.set(Toxic::Latency {
        latency: Duration::from_millis(300),
        jitter: Duration::ZERO,
    });
    let started = Instant::now();
    let mut all = Vec::new();
    TcpStream::connect(proxy.address())
        .await
        .unwrap()
        .read_to_end(&mut all)
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(all, b"01234", "in order");
    // 200 ms of writing plus 300 ms of delay; five delays one after another would be 1.5 s.
    assert!(took >= Duration::from_millis(450), "{took:?}");
    assert!(took < Duration::from_millis(1100), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_sdk_a_trickle_slows_a_receive_and_a_slow_close_does_not() {
    let (proxy, q) = setup().await;
    let body = "x".repeat(120_000);
    q.sender()
        .send(fleet_bus::OutgoingMessage::new(&body))
        .await
        .unwrap();
    proxy.set(Toxic::Bandwidth {
        bytes_per_second: 150_000,
    });
    let started = Instant::now();
    let got = q
        .queue()
        .receive(&ReceiveRequest::new(1, Duration::ZERO).visibility(Duration::from_secs(60)))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body.len(), body.len());
    // 120 kB (and the JSON around it) at 150 kB/s.
    assert!(took >= Duration::from_millis(700), "{took:?}");

    // An answer has a length: the SDK does not wait for the connection's close.
    proxy.set(Toxic::SlowClose {
        delay: Duration::from_secs(5),
    });
    let started = Instant::now();
    assert_eq!(receive(&q).await.unwrap(), 0);
    assert!(started.elapsed() < Duration::from_secs(2));
}
