//! Parquet encoding with one task per column, for results too large to encode in line.
//!
//! `AsyncArrowWriter` encodes every column of a row group on the caller's task, one after the other;
//! on a multi-core machine that leaves the writer as the bottleneck of a large materialization (the
//! query that feeds it runs on several cores). [`ParallelParquetWriter`] hands each column's leaves to
//! its own task (parquet's `ArrowRowGroupWriterFactory` API, as DataFusion's own parallel writer does),
//! gathers the encoded chunks when a row group is full, and streams the finished bytes to the object
//! store. The file is byte-for-byte what a serial writer with the same properties would produce, up to
//! page boundaries.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parquet::arrow::arrow_writer::{
    compute_leaves, ArrowColumnChunk, ArrowLeafColumn, ArrowRowGroupWriterFactory,
};
use parquet::arrow::async_writer::AsyncFileWriter;
use parquet::arrow::{add_encoded_arrow_schema_to_metadata, ArrowSchemaConverter};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Leaves queued per column before the producer waits (bounds memory to a few batches).
const QUEUE: usize = 2;
/// Rows per row group when the properties leave it unlimited.
const DEFAULT_ROW_GROUP_ROWS: usize = 1024 * 1024;

type Worker = (
    JoinHandle<Result<ArrowColumnChunk, ParquetError>>,
    mpsc::Sender<ArrowLeafColumn>,
);

/// The row group being encoded: one worker per leaf column, and how many rows it holds so far.
struct RowGroup {
    workers: Vec<Worker>,
    rows: usize,
}

/// Hands each leaf column of `slice` to its worker. `false` when a worker has stopped (its error is
/// reported when the row group is finished).
async fn send_leaves(
    group: &RowGroup,
    schema: &SchemaRef,
    slice: &RecordBatch,
) -> Result<bool, ParquetError> {
    let mut workers = group.workers.iter();
    for (array, field) in slice.columns().iter().zip(schema.fields()) {
        for leaf in compute_leaves(field, array)? {
            let Some((_, tx)) = workers.next() else {
                return Err(ParquetError::General(
                    "more leaf columns than column writers".to_string(),
                ));
            };
            if tx.send(leaf).await.is_err() {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// A Parquet writer that encodes the columns of each row group concurrently. See the module docs.
pub struct ParallelParquetWriter<W: AsyncFileWriter> {
    out: W,
    file: SerializedFileWriter<Vec<u8>>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    current: Option<RowGroup>,
    row_groups: usize,
    max_rows: usize,
}

impl<W: AsyncFileWriter> ParallelParquetWriter<W> {
    /// A writer of `schema` to `out`, embedding the Arrow schema like `ArrowWriter` does.
    pub fn try_new(
        out: W,
        schema: SchemaRef,
        mut props: WriterProperties,
    ) -> Result<Self, ParquetError> {
        add_encoded_arrow_schema_to_metadata(&schema, &mut props);
        let max_rows = props
            .max_row_group_row_count()
            .unwrap_or(DEFAULT_ROW_GROUP_ROWS)
            .max(1);
        let props = Arc::new(props);
        let parquet_schema = ArrowSchemaConverter::new()
            .with_coerce_types(props.coerce_types())
            .convert(&schema)?;
        let file = SerializedFileWriter::new(Vec::new(), parquet_schema.root_schema_ptr(), props)?;
        let factory = ArrowRowGroupWriterFactory::new(&file, schema.clone());
        Ok(ParallelParquetWriter {
            out,
            file,
            factory,
            schema,
            current: None,
            row_groups: 0,
            max_rows,
        })
    }

    /// Queues `batch` for encoding; waits only when the column tasks are behind.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<(), ParquetError> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let mut group = match self.current.take() {
                Some(group) => group,
                None => self.start_row_group()?,
            };
            let take = (self.max_rows - group.rows).min(batch.num_rows() - offset);
            if !send_leaves(&group, &self.schema, &batch.slice(offset, take)).await? {
                // A column task stopped early: finishing the row group surfaces its error.
                self.finish_row_group(group).await?;
                return Err(ParquetError::General(
                    "a column encoder stopped early".to_string(),
                ));
            }
            group.rows += take;
            offset += take;
            if group.rows >= self.max_rows {
                self.finish_row_group(group).await?;
            } else {
                self.current = Some(group);
            }
        }
        Ok(())
    }

    /// Finishes the last row group and the footer, and completes the upload.
    pub async fn close(mut self) -> Result<(), ParquetError> {
        if let Some(group) = self.current.take() {
            self.finish_row_group(group).await?;
        }
        self.file.finish()?;
        self.flush_bytes().await?;
        self.out.complete().await
    }

    fn start_row_group(&mut self) -> Result<RowGroup, ParquetError> {
        let writers = self.factory.create_column_writers(self.row_groups)?;
        self.row_groups += 1;
        let workers = writers
            .into_iter()
            .map(|mut writer| {
                let (tx, mut rx) = mpsc::channel::<ArrowLeafColumn>(QUEUE);
                let handle = tokio::spawn(async move {
                    while let Some(leaf) = rx.recv().await {
                        writer.write(&leaf)?;
                    }
                    writer.close()
                });
                (handle, tx)
            })
            .collect();
        Ok(RowGroup { workers, rows: 0 })
    }

    async fn finish_row_group(&mut self, group: RowGroup) -> Result<(), ParquetError> {
        let mut chunks = Vec::with_capacity(group.workers.len());
        for (handle, tx) in group.workers {
            drop(tx);
            let chunk = handle
                .await
                .map_err(|e| ParquetError::General(format!("column encoder failed: {e}")))??;
            chunks.push(chunk);
        }
        let mut row_group = self.file.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        self.flush_bytes().await
    }

    /// Moves the bytes encoded so far to the output. The file writer counts offsets itself, so taking
    /// its buffer does not disturb it (this is what `AsyncArrowWriter` does too).
    async fn flush_bytes(&mut self) -> Result<(), ParquetError> {
        self.file.flush()?;
        let bytes = std::mem::take(self.file.inner_mut());
        if bytes.is_empty() {
            return Ok(());
        }
        self.out.write(Bytes::from(bytes)).await
    }
}

/// Bytes written between background flushes of a [`LocalFileWriter`].
const SYNC_EVERY: usize = 32 * 1024 * 1024;

/// Runs blocking file work: in place on the multi-threaded runtime (no hand-off per call), on the
/// blocking pool elsewhere.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    if tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::MultiThread
    {
        tokio::task::block_in_place(f)
    } else {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(std::io::Error::other)?
    }
}

/// Writes a new file of a local warehouse directly: no staging copy and rename, no object-store hop
/// per part. With `fsync`, every [`SYNC_EVERY`] bytes a background thread flushes what is written so
/// far, so the fsync at the end (before the Delta commit may reference the file) has little left to
/// wait for. The file name is new and unreferenced until the commit, so a crash leaves only an
/// orphan for vacuum.
pub struct LocalFileWriter {
    file: Arc<std::fs::File>,
    fsync: bool,
    unsynced: usize,
    flushing: Option<JoinHandle<std::io::Result<()>>>,
}

impl LocalFileWriter {
    /// Creates `path` (and its folder); fails if it exists.
    pub fn create(path: &std::path::Path, fsync: bool) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        Ok(LocalFileWriter {
            file: Arc::new(file),
            fsync,
            unsynced: 0,
            flushing: None,
        })
    }

    async fn wait_flush(&mut self) -> std::io::Result<()> {
        match self.flushing.take() {
            Some(handle) => handle.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

fn io_err(e: std::io::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileWriter for LocalFileWriter {
    fn write(&mut self, bs: Bytes) -> futures::future::BoxFuture<'_, Result<(), ParquetError>> {
        Box::pin(async move {
            let file = self.file.clone();
            let len = bs.len();
            blocking(move || {
                use std::io::Write;
                (&*file).write_all(&bs)
            })
            .await
            .map_err(io_err)?;
            self.unsynced += len;
            if self.fsync && self.unsynced >= SYNC_EVERY {
                self.wait_flush().await.map_err(io_err)?;
                let file = self.file.clone();
                self.flushing = Some(tokio::task::spawn_blocking(move || file.sync_data()));
                self.unsynced = 0;
            }
            Ok(())
        })
    }

    fn complete(&mut self) -> futures::future::BoxFuture<'_, Result<(), ParquetError>> {
        Box::pin(async move {
            self.wait_flush().await.map_err(io_err)?;
            if self.fsync {
                let file = self.file.clone();
                blocking(move || file.sync_all()).await.map_err(io_err)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use futures::future::BoxFuture;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::sync::Mutex;

    /// Collects what the writer produces.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl AsyncFileWriter for Sink {
        fn write(&mut self, bs: Bytes) -> BoxFuture<'_, Result<(), ParquetError>> {
            Box::pin(async move {
                self.0
                    .lock()
                    .map_err(|_| ParquetError::General("poisoned".into()))?
                    .extend_from_slice(&bs);
                Ok(())
            })
        }
        fn complete(&mut self) -> BoxFuture<'_, Result<(), ParquetError>> {
            Box::pin(async { Ok(()) })
        }
    }

    fn batch(schema: &SchemaRef, from: i64, n: i64) -> RecordBatch {
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(from..from + n));
        let names: ArrayRef = Arc::new(StringArray::from_iter(
            (from..from + n).map(|i| (i % 3 != 0).then(|| format!("n{}", i % 7))),
        ));
        RecordBatch::try_new(schema.clone(), vec![ids, names]).expect("batch")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn round_trips_across_row_groups() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let sink = Sink::default();
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(1000))
            .build();
        let mut w =
            ParallelParquetWriter::try_new(sink.clone(), schema.clone(), props).expect("writer");
        // Batches that straddle row-group boundaries.
        let mut from = 0;
        for n in [10, 995, 2500, 1, 494] {
            w.write(&batch(&schema, from, n)).await.expect("write");
            from += n;
        }
        w.close().await.expect("close");
        let bytes = Bytes::from(sink.0.lock().expect("lock").clone());
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).expect("reader");
        assert_eq!(reader.metadata().num_row_groups(), 4);
        assert_eq!(reader.schema().as_ref(), schema.as_ref());
        let got: Vec<RecordBatch> = reader
            .build()
            .expect("build")
            .collect::<Result<_, _>>()
            .expect("read");
        let got = arrow::compute::concat_batches(&schema, &got).expect("concat");
        assert_eq!(got, batch(&schema, 0, from));
    }
}
