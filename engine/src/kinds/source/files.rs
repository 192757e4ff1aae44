//! Files of a source: listing the matches, reading exactly the observed ones, and checking each
//! file's schema against the first file's or the declared one.

use super::{FileSource, ObservedFile, SourceFormat};
use crate::error::first_line;
use datafusion::catalog::TableProvider;
use datafusion::datasource::file_format::{
    csv::CsvFormat, json::JsonFormat, parquet::ParquetFormat, FileFormat,
};
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::SessionContext;
use std::sync::Arc;

impl FileSource {
    /// The files that match now, sorted by path; the error says what is wrong (for E0240 or a step).
    pub async fn files(&self) -> Result<Vec<ObservedFile>, String> {
        if let Some(r) = &self.remote {
            return r.list(&self.pattern).await;
        }
        let rd = std::fs::read_dir(&self.dir)
            .map_err(|e| format!("cannot list {}: {e}", self.dir.display()))?;
        let mut out = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !crate::selection::glob_match(&self.pattern, &name) || name.starts_with('.') {
                continue;
            }
            if !e.path().is_file() {
                continue;
            }
            let (size, modified_ms) = ObservedFile::stamp(&e.path())
                .ok_or_else(|| format!("cannot read {}", e.path().display()))?;
            out.push(ObservedFile {
                path: e.path().display().to_string(),
                size,
                modified_ms,
                etag: None,
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        if out.is_empty() {
            return Err(format!(
                "no file matches {}",
                self.dir.join(&self.pattern).display()
            ));
        }
        Ok(out)
    }

    fn options(&self) -> ListingOptions {
        let format: Arc<dyn FileFormat> = match self.format {
            SourceFormat::Parquet => Arc::new(ParquetFormat::default()),
            SourceFormat::Csv => Arc::new(
                CsvFormat::default()
                    .with_has_header(self.header)
                    .with_delimiter(self.delimiter),
            ),
            SourceFormat::Json => Arc::new(JsonFormat::default()),
        };
        ListingOptions::new(format).with_file_extension("")
    }

    fn url(path: &str) -> Result<ListingTableUrl, String> {
        ListingTableUrl::parse(path).map_err(|e| format!("{path}: {e}"))
    }

    /// A table over exactly `files`. Every file's schema must be the first one's: a file that drifted
    /// is named with the column.
    pub async fn table(
        &self,
        ctx: &SessionContext,
        files: &[ObservedFile],
        declared: Option<&arrow::datatypes::SchemaRef>,
    ) -> Result<Arc<dyn TableProvider>, String> {
        if let Some(r) = &self.remote {
            r.register(ctx);
        }
        let state = ctx.state();
        let options = self.options();
        let mut schema: Option<(String, arrow::datatypes::SchemaRef)> = None;
        let mut urls = Vec::with_capacity(files.len());
        for f in files {
            let url = Self::url(&f.path)?;
            let this = options.infer_schema(&state, &url).await.map_err(|e| {
                // The root cause names the line (arrow: "incorrect number of fields for line
                // 3, expected 2 got 4"); the first line of the chain only names the file.
                let root = first_line(&e.find_root().to_string());
                let top = first_line(&e.to_string());
                if top.contains(&root) {
                    format!("cannot read {}: {top}", f.path)
                } else {
                    format!("cannot read {}: {top}: {root}", f.path)
                }
            })?;
            if let Some(d) = declared {
                if let Some(problem) = self.against_declared(d, &this) {
                    return Err(format!(
                        "{}: {problem} (the source's `schema:`); fix the file or the declaration",
                        f.path
                    ));
                }
            }
            match &schema {
                None => schema = Some((f.path.clone(), this)),
                Some(_) if declared.is_some() => {}
                Some((first, s)) => {
                    if let Some(problem) = drift(s, &this) {
                        return Err(format!(
                            "{}: {problem} (the first file, {first}, has another schema); fix the file or move it out of the source",
                            f.path
                        ));
                    }
                }
            }
            urls.push(url);
        }
        let (_, inferred) = schema.ok_or("no file to read")?;
        let schema = declared.cloned().unwrap_or(inferred);
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(schema);
        let table = ListingTable::try_new(config).map_err(|e| e.to_string())?;
        Ok(Arc::new(table))
    }
}

impl FileSource {
    /// How a file's inferred schema differs from the declared one: Parquet has its types, so they must
    /// match; CSV columns are read by position with the declared types, so the header must name the
    /// declared columns in order (or, without a header, count them); JSON objects are read by name with
    /// the declared types, so each key must be declared.
    fn against_declared(
        &self,
        declared: &arrow::datatypes::Schema,
        file: &arrow::datatypes::Schema,
    ) -> Option<String> {
        match self.format {
            SourceFormat::Parquet => crate::project::declared_schema::mismatch(declared, file),
            SourceFormat::Csv if !self.header => (file.fields().len() != declared.fields().len())
                .then(|| {
                    format!(
                        "{} columns, {} declared",
                        file.fields().len(),
                        declared.fields().len()
                    )
                }),
            SourceFormat::Csv => {
                let names = |s: &arrow::datatypes::Schema| {
                    s.fields()
                        .iter()
                        .map(|f| f.name().clone())
                        .collect::<Vec<_>>()
                };
                let (got, want) = (names(file), names(declared));
                for (i, w) in want.iter().enumerate() {
                    match got.get(i) {
                        Some(g) if g == w => {}
                        Some(g) => {
                            return Some(format!("column {} is '{g}', declared '{w}'", i + 1))
                        }
                        None => return Some(format!("column '{w}' is declared but missing")),
                    }
                }
                got.get(want.len())
                    .map(|g| format!("column '{g}' is not declared"))
            }
            SourceFormat::Json => file
                .fields()
                .iter()
                .find(|f| declared.field_with_name(f.name()).is_err())
                .map(|f| format!("key '{}' is not declared", f.name())),
        }
    }

    /// The schema the files have now, without reading their data (footers, headers); `None` when no
    /// file matches yet.
    pub async fn probe(
        &self,
        declared: Option<&arrow::datatypes::SchemaRef>,
    ) -> Result<Option<arrow::datatypes::SchemaRef>, String> {
        let Ok(files) = self.files().await else {
            return Ok(None);
        };
        let ctx = SessionContext::new();
        Ok(Some(self.table(&ctx, &files, declared).await?.schema()))
    }
}

/// How `other`'s columns differ from `first`'s, if they do.
fn drift(first: &arrow::datatypes::Schema, other: &arrow::datatypes::Schema) -> Option<String> {
    for f in first.fields() {
        match other.field_with_name(f.name()) {
            Err(_) => return Some(format!("column '{}' is missing", f.name())),
            Ok(o) if o.data_type() != f.data_type() => {
                return Some(format!(
                    "column '{}' is {} here, {} in the first file",
                    f.name(),
                    o.data_type(),
                    f.data_type()
                ))
            }
            Ok(_) => {}
        }
    }
    other
        .fields()
        .iter()
        .find(|o| first.field_with_name(o.name()).is_err())
        .map(|o| format!("column '{}' is not in the first file", o.name()))
}
