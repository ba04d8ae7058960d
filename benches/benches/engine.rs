//! Consumer engine throughput on the embedded transport: messages per second through receive,
//! a no-op handler and batched deletes. This measures Fleet's own overhead, not SQS.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fleet_benches::{drain, loaded_bus};

const N: usize = 10_000;

fn engine(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("consumer_noop");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(10);
    for pollers in [1, 4] {
        group.bench_function(format!("{N}_messages_{pollers}_pollers"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = std::time::Duration::ZERO;
                    for _ in 0..iters {
                        let bus = loaded_bus(N).await;
                        total += drain(bus, N, pollers).await;
                    }
                    total
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
