//! tern-tokio's part of the drivers' shared test suite
//! (`drivers/common/suite`): tokio's runtimes, tasks and timer.

use crate::suite::Runtime;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The suite on tokio.
pub struct Tokio;

crate::suite::endpoint!(tern_tokio::Endpoint);

/// A tokio task that is aborted when dropped, as smol's are.
pub struct Task<T>(tokio::task::JoinHandle<T>);

impl<T> Future for Task<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.expect("the task failed"))
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Runtime for Tokio {
    type Endpoint = tern_tokio::Endpoint;
    type Task<T: Send + 'static> = Task<T>;

    fn block_on(test: impl Future<Output = ()>) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(test);
    }

    fn block_on_threaded(test: impl Future<Output = ()>) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(test);
    }

    fn spawn<T: Send + 'static>(task: impl Future<Output = T> + Send + 'static) -> Task<T> {
        Task(tokio::spawn(task))
    }

    fn is_finished<T: Send + 'static>(task: &Task<T>) -> bool {
        task.0.is_finished()
    }

    fn sleep(d: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(d)
    }

    async fn unblock<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        tokio::task::spawn_blocking(f).await.unwrap()
    }
}
