//! tern-smol's part of the drivers' shared test suite
//! (`drivers/common/suite`): smol's executor, tasks and timer.

use crate::suite::Runtime;
use std::future::Future;
use std::time::Duration;

/// The suite on smol.
pub struct Smol;

crate::suite::endpoint!(tern_smol::Endpoint);

impl Runtime for Smol {
    type Endpoint = tern_smol::Endpoint;
    type Task<T: Send + 'static> = smol::Task<T>;

    /// The test on this thread; the endpoints' tasks run on smol's
    /// global executor, on threads of their own.
    fn block_on(test: impl Future<Output = ()>) {
        smol::block_on(test);
    }

    fn block_on_threaded(test: impl Future<Output = ()>) {
        smol::block_on(test);
    }

    fn spawn<T: Send + 'static>(task: impl Future<Output = T> + Send + 'static) -> smol::Task<T> {
        smol::spawn(task)
    }

    fn is_finished<T: Send + 'static>(task: &smol::Task<T>) -> bool {
        task.is_finished()
    }

    async fn sleep(d: Duration) {
        async_io::Timer::after(d).await;
    }

    fn unblock<T: Send + 'static>(
        f: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = T> + Send {
        smol::unblock(f)
    }
}
