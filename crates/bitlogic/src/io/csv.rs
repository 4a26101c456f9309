//! Tabular data from delimited text files (CSV and the whitespace-separated UCI files).
//!
//! The training file decides everything: which columns are numeric (every non-missing value
//! parses as a number) and which are categorical (one-hot encoded, categories sorted), the
//! numeric means that stand in for missing values, and the label set. That decision is kept
//! in a [`CsvSchema`] and applied unchanged to the test file, so both splits get the same
//! feature layout.
//!
//! Parsing rules: fields are separated by a comma (or another byte, or runs of whitespace),
//! may be double-quoted with `""` as an escaped quote, and are trimmed. Blank lines and lines
//! starting with `|` (UCI comments) are skipped. `?` or an empty field is a missing value.
//! A trailing `.` on a label is dropped, because Adult's test file writes `>50K.`.
//!
//! ```no_run
//! use std::path::Path;
//! use bitlogic::io::csv::{load_csv_train, load_csv_with_schema, CsvOptions};
//!
//! // Adult has no header, so its columns are named "0".."14"; the label is the last one.
//! let opts = CsvOptions { has_header: false, delimiter: None, label_column: "14".into() };
//! let (train, schema) = load_csv_train(Path::new("adult/adult.data"), &opts)?;
//! let test = load_csv_with_schema(Path::new("adult/adult.test"), &schema)?;
//! assert_eq!(train.features, test.features);
//! println!("{:?}", &schema.feature_names()[..3]); // ["0", "1=?", "1=Federal-gov"]
//! # Ok::<(), bitlogic::Error>(())
//! ```

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use crate::io::Dataset;
use crate::{Error, Result};

/// How to read a training file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvOptions {
    /// The first (non-blank, non-comment) line names the columns. Without a header the
    /// columns are named `"0"`, `"1"`, ….
    pub has_header: bool,
    /// `None`: a comma if the first line has one, else whitespace. `Some(b' ')` means runs of
    /// spaces and tabs (as in the MONK's files); any other byte is an exact single separator.
    pub delimiter: Option<u8>,
    /// Name of the label column (its index, as a string, when there is no header).
    pub label_column: String,
}

impl CsvOptions {
    /// A headed file with an auto-detected delimiter.
    pub fn new(label_column: impl Into<String>) -> Self {
        CsvOptions {
            has_header: true,
            delimiter: None,
            label_column: label_column.into(),
        }
    }
}

/// What the training file taught: apply it to other files with [`load_csv_with_schema`].
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct CsvSchema {
    /// Every column of the file, in file order, the label column included.
    pub columns: Vec<ColumnSchema>,
    pub label_column: String,
    /// Class `i` is `labels[i]`.
    pub labels: Vec<String>,
    pub has_header: bool,
    /// The delimiter the training file was read with (resolved, when auto-detected).
    pub delimiter: Option<u8>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub enum ColumnSchema {
    /// One feature; a missing value becomes `mean`, the training mean.
    Numeric {
        name: String,
        mean: f64,
    },
    /// One feature per category (`"?"` is the category of missing values); a value not in
    /// `categories` encodes as all zeros.
    Categorical {
        name: String,
        categories: Vec<String>,
    },
    Label {
        name: String,
    },
}

impl CsvSchema {
    /// One name per feature, in feature order: `"age"`, `"workclass=Private"`, ….
    pub fn feature_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for col in &self.columns {
            match col {
                ColumnSchema::Numeric { name, .. } => names.push(name.clone()),
                ColumnSchema::Categorical { name, categories } => {
                    names.extend(categories.iter().map(|c| format!("{name}={c}")));
                }
                ColumnSchema::Label { .. } => {}
            }
        }
        names
    }
}

/// Reads a training file, decides the schema from it, and encodes it.
pub fn load_csv_train(path: &Path, opts: &CsvOptions) -> Result<(Dataset, CsvSchema)> {
    let text = read_text(path)?;
    let table = parse_table(path, &text, opts.has_header, opts.delimiter, None)?;

    let matches: Vec<usize> = (0..table.names.len())
        .filter(|&i| table.names[i] == opts.label_column)
        .collect();
    let label_idx = match matches[..] {
        [i] => i,
        [] => {
            let how = if opts.has_header {
                "available columns"
            } else {
                "the file has no header, so columns are numbered"
            };
            return Err(Error::format(
                path,
                format!(
                    "label column '{}' not found; {how}: {}",
                    opts.label_column,
                    list(&table.names)
                ),
            ));
        }
        _ => {
            return Err(Error::format(
                path,
                format!(
                    "label column '{}' is ambiguous: {} columns have that name",
                    opts.label_column,
                    matches.len()
                ),
            ))
        }
    };
    if table.names.len() < 2 {
        return Err(Error::format(
            path,
            "has only the label column, so there are no features",
        ));
    }

    let columns = table
        .names
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let name = name.clone();
            if c == label_idx {
                return ColumnSchema::Label { name };
            }
            let values = table.rows.iter().map(|r| r.fields[c].as_str());
            let numbers: Option<Vec<f64>> = values
                .clone()
                .filter(|v| !is_missing(v))
                .map(parse_number)
                .collect();
            match numbers {
                // An all-missing column has nothing to average; a constant "?" category it is.
                Some(nums) if !nums.is_empty() => ColumnSchema::Numeric {
                    name,
                    mean: nums.iter().sum::<f64>() / nums.len() as f64,
                },
                _ => {
                    let set: BTreeSet<&str> = values.map(category).collect();
                    ColumnSchema::Categorical {
                        name,
                        categories: set.into_iter().map(String::from).collect(),
                    }
                }
            }
        })
        .collect();

    let mut distinct = BTreeSet::new();
    for row in &table.rows {
        let v = label_value(&row.fields[label_idx]);
        if is_missing(v) {
            return Err(missing_label(path, row.line, &opts.label_column));
        }
        distinct.insert(v);
    }
    let mut labels: Vec<String> = distinct.into_iter().map(String::from).collect();
    // Numeric labels sort by value, so "10" comes after "9".
    if let Some(nums) = labels
        .iter()
        .map(|l| parse_number(l))
        .collect::<Option<Vec<f64>>>()
    {
        let mut pairs: Vec<(f64, String)> = nums.into_iter().zip(labels).collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        labels = pairs.into_iter().map(|p| p.1).collect();
    }
    if labels.len() < 2 {
        return Err(Error::format(
            path,
            format!(
                "label column '{}' has only one distinct value ({}); at least 2 classes are needed",
                opts.label_column,
                list(&labels)
            ),
        ));
    }

    let schema = CsvSchema {
        columns,
        label_column: opts.label_column.clone(),
        labels,
        has_header: opts.has_header,
        delimiter: Some(table.delimiter),
    };
    let ds = encode(path, &schema, &table.rows)?;
    Ok((ds, schema))
}

/// Reads a test or evaluation file with the schema of its training file.
pub fn load_csv_with_schema(path: &Path, schema: &CsvSchema) -> Result<Dataset> {
    let text = read_text(path)?;
    let ncols = schema.columns.len();
    let table = parse_table(
        path,
        &text,
        schema.has_header,
        schema.delimiter,
        Some(ncols),
    )?;
    if schema.has_header {
        for (i, (col, found)) in schema.columns.iter().zip(&table.names).enumerate() {
            let expected = column_name(col);
            if expected != found {
                return Err(Error::format(
                    path,
                    format!(
                        "column {i} is named '{found}' but the training file calls it '{expected}'; \
                         both files need the same columns in the same order"
                    ),
                ));
            }
        }
    }
    encode(path, schema, &table.rows)
}

fn column_name(col: &ColumnSchema) -> &str {
    match col {
        ColumnSchema::Numeric { name, .. }
        | ColumnSchema::Categorical { name, .. }
        | ColumnSchema::Label { name } => name,
    }
}

/// Turns rows into features and class indices, following `schema` column by column.
fn encode(path: &Path, schema: &CsvSchema, rows: &[Row]) -> Result<Dataset> {
    if !schema
        .columns
        .iter()
        .any(|c| matches!(c, ColumnSchema::Label { .. }))
    {
        return Err(Error::invalid(format!(
            "CSV schema for {} has no Label column",
            path.display()
        )));
    }
    let class_of: HashMap<&str, u32> = schema
        .labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i as u32))
        .collect();
    let features = schema.feature_names().len();
    let mut x = Vec::with_capacity(rows.len() * features);
    let mut y = Vec::with_capacity(rows.len());
    for row in rows {
        for (col, v) in schema.columns.iter().zip(&row.fields) {
            match col {
                ColumnSchema::Numeric { name, mean } => {
                    let value = if is_missing(v) {
                        *mean
                    } else {
                        parse_number(v).ok_or_else(|| {
                            Error::format(
                                path,
                                format!(
                                    "line {}: column '{name}' holds '{v}', which is not a number, \
                                     but the column is numeric in the training file",
                                    row.line
                                ),
                            )
                        })?
                    };
                    x.push(value as f32);
                }
                ColumnSchema::Categorical { categories, .. } => {
                    // Unseen categories stay all zeros: the model has nothing to say about them.
                    let hit = categories
                        .binary_search_by(|c| c.as_str().cmp(category(v)))
                        .ok();
                    x.extend((0..categories.len()).map(|i| if hit == Some(i) { 1.0 } else { 0.0 }));
                }
                ColumnSchema::Label { name } => {
                    let v = label_value(v);
                    if is_missing(v) {
                        return Err(missing_label(path, row.line, name));
                    }
                    let class = class_of.get(v).ok_or_else(|| {
                        Error::format(
                            path,
                            format!(
                                "line {}: label '{v}' does not occur in the training file; \
                                 known labels: {}",
                                row.line,
                                list(&schema.labels)
                            ),
                        )
                    })?;
                    y.push(*class);
                }
            }
        }
    }
    Ok(Dataset {
        n: rows.len(),
        features,
        classes: schema.labels.len(),
        x,
        y,
        image_shape: None,
    })
}

fn missing_label(path: &Path, line: usize, column: &str) -> Error {
    Error::format(
        path,
        format!("line {line}: the label (column '{column}') is missing"),
    )
}

fn is_missing(v: &str) -> bool {
    v.is_empty() || v == "?"
}

/// A categorical value, with every missing value spelled `?`.
fn category(v: &str) -> &str {
    if is_missing(v) {
        "?"
    } else {
        v
    }
}

fn label_value(v: &str) -> &str {
    v.strip_suffix('.').unwrap_or(v)
}

/// Finite numbers only: "inf" and "NaN" parse as f64 but are no use as features.
fn parse_number(v: &str) -> Option<f64> {
    v.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// At most 20 items, comma-separated, so an error about a wide file stays readable.
fn list(items: &[String]) -> String {
    const MAX: usize = 20;
    let shown: Vec<&str> = items.iter().take(MAX).map(String::as_str).collect();
    let mut s = shown.join(", ");
    if items.len() > MAX {
        s.push_str(&format!(", … ({} more)", items.len() - MAX));
    }
    s
}

fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::format(
            path,
            format!(
                "not UTF-8 text (invalid byte at offset {}); convert it first, e.g. with iconv",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

struct Row {
    /// 1-based line number in the file, for error messages.
    line: usize,
    fields: Vec<String>,
}

struct Table {
    names: Vec<String>,
    rows: Vec<Row>,
    delimiter: u8,
}

/// Splits the file into a header and rows that all have the same number of fields
/// (`ncols`, or else as many as the first line).
fn parse_table(
    path: &Path,
    text: &str,
    has_header: bool,
    delimiter: Option<u8>,
    ncols: Option<usize>,
) -> Result<Table> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('|')
        })
        .peekable();
    let Some(&(_, first)) = lines.peek() else {
        return Err(Error::format(path, "no data rows: the file is empty"));
    };
    let delimiter = match delimiter {
        Some(d) if d == b'"' || d == b'\r' || d == b'\n' || !d.is_ascii() => {
            return Err(Error::invalid(format!(
                "CSV delimiter {:?} is not usable; use an ASCII byte other than a quote or a \
                 line break, e.g. ',' or ';', or ' ' for whitespace",
                char::from(d)
            )))
        }
        Some(d) => d,
        None if first.contains(',') => b',',
        None => b' ',
    };

    let mut header = None;
    if has_header {
        if let Some((line, l)) = lines.next() {
            header = Some((line, split_line(path, line, l, delimiter)?));
        }
    }
    let mut rows = Vec::new();
    for (line, l) in lines {
        rows.push(Row {
            line,
            fields: split_line(path, line, l, delimiter)?,
        });
    }
    let Some(first_row) = rows.first() else {
        return Err(Error::format(path, "no data rows after the header"));
    };
    let (header_line, names) = header.unwrap_or_else(|| {
        (
            0,
            (0..first_row.fields.len()).map(|i| i.to_string()).collect(),
        )
    });
    let expected = ncols.unwrap_or(names.len());
    for (line, found) in has_header
        .then_some((header_line, names.len()))
        .into_iter()
        .chain(rows.iter().map(|r| (r.line, r.fields.len())))
    {
        if found != expected {
            let what = if ncols.is_some() {
                "as in the training file"
            } else if has_header {
                "as in the header"
            } else {
                "as in the first row"
            };
            return Err(Error::format(
                path,
                format!("line {line}: expected {expected} fields ({what}), found {found}"),
            ));
        }
    }
    Ok(Table {
        names,
        rows,
        delimiter,
    })
}

/// Splits one line into trimmed, unquoted fields. `b' '` splits on runs of whitespace.
fn split_line(path: &Path, line: usize, text: &str, delimiter: u8) -> Result<Vec<String>> {
    let ws = delimiter == b' ';
    let delim = char::from(delimiter);
    let is_sep = |c: char| if ws { c.is_whitespace() } else { c == delim };
    // Padding around a field, but never the separator itself (e.g. a tab).
    let is_pad = |c: char| c.is_whitespace() && !is_sep(c);
    let bad = |msg: &str| Error::format(path, format!("line {line}: {msg}"));

    let mut fields = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        if ws {
            while chars.next_if(|&c| c.is_whitespace()).is_some() {}
            if chars.peek().is_none() {
                break;
            }
        } else {
            while chars.next_if(|&c| is_pad(c)).is_some() {}
        }
        let mut field = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    None => return Err(bad("unterminated quoted field")),
                    Some('"') if chars.next_if_eq(&'"').is_some() => field.push('"'),
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            while chars.next_if(|&c| is_pad(c)).is_some() {}
            if chars.peek().is_some_and(|&c| !is_sep(c)) {
                return Err(bad(&format!(
                    "text after the closing quote of field {}; quote the whole field",
                    fields.len() + 1
                )));
            }
        } else {
            while let Some(c) = chars.next_if(|&c| !is_sep(c)) {
                field.push(c);
            }
            field.truncate(field.trim_end().len());
        }
        fields.push(field);
        // The separator, or the end of the line.
        if chars.next().is_none() {
            break;
        }
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A fresh directory per test, so tests running in parallel never share files.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bitlogic-csv-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn no_header(label: &str) -> CsvOptions {
        CsvOptions {
            has_header: false,
            delimiter: None,
            label_column: label.into(),
        }
    }

    fn err_text(r: Result<impl std::fmt::Debug>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn header_numeric_categorical_and_labels() {
        let dir = temp_dir("basic");
        let train = write(
            &dir,
            "train.csv",
            "age, color ,class\r\n30,red,yes\r\n\r\n40, blue ,no\r\n50,red,yes\r\n",
        );
        let (ds, schema) = load_csv_train(&train, &CsvOptions::new("class")).unwrap();
        assert_eq!(schema.feature_names(), ["age", "color=blue", "color=red"]);
        assert_eq!(schema.labels, ["no", "yes"]);
        assert_eq!(schema.delimiter, Some(b','));
        assert_eq!((ds.n, ds.features, ds.classes), (3, 3, 2));
        assert_eq!(ds.x, [30.0, 0.0, 1.0, 40.0, 1.0, 0.0, 50.0, 0.0, 1.0]);
        assert_eq!(ds.y, [1, 0, 1]);
        assert!(matches!(&schema.columns[0], ColumnSchema::Numeric { mean, .. } if *mean == 40.0));

        // An unseen category encodes as all zeros; the schema survives a JSON round trip.
        let test = write(&dir, "test.csv", "age,color,class\n20,green,no\n");
        let json = serde_json::to_string(&schema).unwrap();
        let schema2: CsvSchema = serde_json::from_str(&json).unwrap();
        assert_eq!(schema2, schema);
        let t = load_csv_with_schema(&test, &schema2).unwrap();
        assert_eq!((t.x, t.y), (vec![20.0, 0.0, 0.0], vec![0]));

        let renamed = write(&dir, "renamed.csv", "years,color,class\n20,red,no\n");
        let e = err_text(load_csv_with_schema(&renamed, &schema));
        assert!(
            e.contains("renamed.csv") && e.contains("'years'") && e.contains("'age'"),
            "{e}"
        );

        let unknown = write(
            &dir,
            "unknown.csv",
            "age,color,class\n20,red,no\n21,red,maybe\n",
        );
        let e = err_text(load_csv_with_schema(&unknown, &schema));
        assert!(
            e.contains("unknown.csv") && e.contains("line 3") && e.contains("'maybe'"),
            "{e}"
        );

        let text = write(&dir, "text.csv", "age,color,class\nold,red,no\n");
        let e = err_text(load_csv_with_schema(&text, &schema));
        assert!(
            e.contains("line 2") && e.contains("'old'") && e.contains("numeric"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn quoting() {
        let dir = temp_dir("quoting");
        let path = write(
            &dir,
            "q.csv",
            "\"name, full\",\"y\"\n\"Smith, \"\"J\"\"\", 1\n  \"Doe\" ,2\n",
        );
        let (ds, schema) = load_csv_train(&path, &CsvOptions::new("y")).unwrap();
        assert_eq!(
            schema.feature_names(),
            ["name, full=Doe", "name, full=Smith, \"J\""]
        );
        assert_eq!(ds.y, [0, 1]);
        let bad = write(&dir, "bad.csv", "a,y\n\"open,1\n");
        let e = err_text(load_csv_train(&bad, &CsvOptions::new("y")));
        assert!(
            e.contains("bad.csv") && e.contains("line 2") && e.contains("unterminated"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_values() {
        let dir = temp_dir("missing");
        let train = write(&dir, "train.csv", "1,a,x\n?,?,y\n3,,x\n");
        let (ds, schema) = load_csv_train(&train, &no_header("2")).unwrap();
        // Numeric: the missing value is the mean of 1 and 3. Categorical: "?" is a category.
        assert_eq!(schema.feature_names(), ["0", "1=?", "1=a"]);
        assert_eq!(ds.x, [1.0, 0.0, 1.0, 2.0, 1.0, 0.0, 3.0, 1.0, 0.0]);
        let test = write(&dir, "test.csv", ",?,y\n");
        assert_eq!(
            load_csv_with_schema(&test, &schema).unwrap().x,
            [2.0, 1.0, 0.0]
        );

        let no_label = write(&dir, "nolabel.csv", "1,a,x\n2,b,?\n");
        let e = err_text(load_csv_train(&no_label, &no_header("2")));
        assert!(
            e.contains("line 2") && e.contains("label") && e.contains("missing"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn whitespace_comments_and_numeric_labels() {
        let dir = temp_dir("ws");
        let path = write(&dir, "w.txt", "| a comment\n 10 1.5\tq\n 9  2 r\n 10 3 s\n");
        let (ds, schema) = load_csv_train(&path, &no_header("0")).unwrap();
        assert_eq!(schema.delimiter, Some(b' '));
        // Sorted by value: 9 before 10.
        assert_eq!(schema.labels, ["9", "10"]);
        assert_eq!(ds.y, [1, 0, 1]);
        assert_eq!(schema.feature_names(), ["1", "2=q", "2=r", "2=s"]);

        // Tab as an exact delimiter keeps empty fields.
        let tab = write(&dir, "t.tsv", "a\tb\ty\n1\t\tp\n2\tz\tq.\n");
        let opts = CsvOptions {
            delimiter: Some(b'\t'),
            ..CsvOptions::new("y")
        };
        let (ds, schema) = load_csv_train(&tab, &opts).unwrap();
        assert_eq!(schema.feature_names(), ["a", "b=?", "b=z"]);
        assert_eq!(schema.labels, ["p", "q"]);
        assert_eq!(ds.y, [0, 1]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_files() {
        let dir = temp_dir("bad");
        let short = write(&dir, "short.csv", "a,b,y\n1,2,x\n1,z\n");
        let e = err_text(load_csv_train(&short, &CsvOptions::new("y")));
        assert!(e.contains("short.csv") && e.contains("line 3"), "{e}");
        assert!(
            e.contains("expected 3 fields") && e.contains("found 2"),
            "{e}"
        );

        let (_, schema) = load_csv_train(
            &write(&dir, "ok.csv", "a,y\n1,x\n2,z\n"),
            &CsvOptions::new("y"),
        )
        .unwrap();
        let wide = write(&dir, "wide.csv", "a,y\n1,x,3\n");
        let e = err_text(load_csv_with_schema(&wide, &schema));
        assert!(
            e.contains("wide.csv") && e.contains("line 2") && e.contains("expected 2"),
            "{e}"
        );

        let good = write(&dir, "good.csv", "a,b,y\n1,2,x\n1,3,z\n");
        let e = err_text(load_csv_train(&good, &CsvOptions::new("label")));
        assert!(
            e.contains("good.csv") && e.contains("'label' not found"),
            "{e}"
        );
        assert!(e.contains("available columns: a, b, y"), "{e}");
        let e = err_text(load_csv_train(&good, &no_header("7")));
        assert!(e.contains("'7' not found") && e.contains("0, 1, 2"), "{e}");

        let e = err_text(load_csv_train(
            &write(&dir, "empty.csv", "\n|c\n"),
            &CsvOptions::new("y"),
        ));
        assert!(e.contains("empty.csv") && e.contains("no data rows"), "{e}");
        let e = err_text(load_csv_train(
            &write(&dir, "head.csv", "a,y\n"),
            &CsvOptions::new("y"),
        ));
        assert!(e.contains("head.csv") && e.contains("no data rows"), "{e}");
        let e = err_text(load_csv_train(
            &write(&dir, "one.csv", "a,y\n1,x\n"),
            &CsvOptions::new("y"),
        ));
        assert!(e.contains("only one distinct value"), "{e}");

        let e = err_text(load_csv_train(&dir.join("nope.csv"), &CsvOptions::new("y")));
        assert!(e.contains("nope.csv"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn uci(rel: &str) -> Option<PathBuf> {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/uci"
        ))
        .join(rel);
        if path.is_file() {
            Some(path)
        } else {
            eprintln!("note: {} is absent; skipping this test", path.display());
            None
        }
    }

    #[test]
    fn uci_adult() {
        let (Some(train), Some(test)) = (uci("adult/adult.data"), uci("adult/adult.test")) else {
            return;
        };
        let (tr, schema) = load_csv_train(&train, &no_header("14")).unwrap();
        assert_eq!(schema.labels, ["<=50K", ">50K"]);
        assert_eq!((tr.n, tr.classes), (32561, 2));
        let te = load_csv_with_schema(&test, &schema).unwrap();
        assert_eq!((te.n, te.classes, te.features), (16281, 2, tr.features));
        // Column 1 (workclass) is categorical with a "?" category; column 0 (age) is numeric.
        let names = schema.feature_names();
        assert_eq!(names[0], "0");
        assert!(names.contains(&"1=?".to_string()) && names.contains(&"1=Private".to_string()));
        // The first test row is a "<=50K." row.
        assert_eq!(te.y[0], 0);
    }

    #[test]
    fn uci_monks1() {
        let (Some(train), Some(test)) = (uci("monks/monks-1.train"), uci("monks/monks-1.test"))
        else {
            return;
        };
        let (tr, schema) = load_csv_train(&train, &no_header("0")).unwrap();
        assert_eq!(schema.delimiter, Some(b' '));
        assert_eq!(schema.labels, ["0", "1"]);
        assert_eq!((tr.n, tr.classes), (124, 2));
        let te = load_csv_with_schema(&test, &schema).unwrap();
        assert_eq!((te.n, te.features), (432, tr.features));
    }
}
