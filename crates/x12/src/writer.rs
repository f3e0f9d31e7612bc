//! The segment writer: delimiters declared in the ISA, every value checked (no delimiter inside,
//! printable ASCII only, lengths the writer knows), the ISA's fixed-width fields padded, and the
//! trailers' counts and control numbers kept by the writer rather than by its callers.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

use crate::error::{BuildError, BuildProblem, Location};

/// The four delimiters an interchange declares in its ISA segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Delimiters {
    element: u8,
    component: u8,
    repetition: u8,
    segment: u8,
}

impl Default for Delimiters {
    /// `*`, `:`, `^` and `~`, what most clearinghouses expect.
    fn default() -> Self {
        Delimiters {
            element: b'*',
            component: b':',
            repetition: b'^',
            segment: b'~',
        }
    }
}

impl Delimiters {
    /// Delimiters from their characters; each must be printable ASCII punctuation (the segment
    /// terminator may also be a line feed) and all four must differ.
    pub fn new(
        element: char,
        component: char,
        repetition: char,
        segment: char,
    ) -> Result<Delimiters, &'static str> {
        let byte = |character: char| u8::try_from(character).ok().filter(u8::is_ascii);
        let (Some(element), Some(component), Some(repetition), Some(segment)) = (
            byte(element),
            byte(component),
            byte(repetition),
            byte(segment),
        ) else {
            return Err("a delimiter is not ASCII");
        };
        let punctuation = |byte: u8| byte.is_ascii_punctuation();
        if ![element, component, repetition]
            .into_iter()
            .all(punctuation)
        {
            return Err("element, component and repetition separators must be punctuation");
        }
        if !(punctuation(segment) || segment == b'\n') {
            return Err("the segment terminator must be punctuation or a line feed");
        }
        let all = [element, component, repetition, segment];
        let distinct = all
            .iter()
            .enumerate()
            .all(|(index, byte)| !all[index + 1..].contains(byte));
        if !distinct {
            return Err("two delimiters are the same character");
        }
        Ok(Delimiters {
            element,
            component,
            repetition,
            segment,
        })
    }

    /// The element separator (ISA position 4).
    pub fn element(&self) -> char {
        char::from(self.element)
    }

    /// The component separator (ISA16).
    pub fn component(&self) -> char {
        char::from(self.component)
    }

    /// The repetition separator (ISA11).
    pub fn repetition(&self) -> char {
        char::from(self.repetition)
    }

    /// The segment terminator (after ISA16).
    pub fn segment(&self) -> char {
        char::from(self.segment)
    }

    /// Which delimiter `byte` is, by name, if any.
    pub(crate) fn name_of(&self, byte: u8) -> Option<&'static str> {
        match byte {
            b if b == self.element => Some("element separator"),
            b if b == self.component => Some("component separator"),
            b if b == self.repetition => Some("repetition separator"),
            b if b == self.segment => Some("segment terminator"),
            _ => None,
        }
    }
}

/// How segments follow one another in the written file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// One line per segment: a line feed after each terminator, which every receiver tolerates
    /// and people can read.
    #[default]
    LinePerSegment,
    /// No line breaks at all, for receivers that count every byte.
    Compact,
}

/// One value of an element or of a component, with the lengths the implementation guide allows
/// (`max == 0`: the writer knows no limit). An empty value with `min == 0` is simply absent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Value<'a> {
    text: &'a str,
    min: usize,
    max: usize,
}

/// A value with its length limits; empty is refused when `min > 0`.
pub(crate) fn text(text: &str, min: usize, max: usize) -> Value<'_> {
    Value { text, min, max }
}

/// A code or literal the builder itself chose (still checked for delimiters).
pub(crate) fn code(text: &str) -> Value<'_> {
    Value {
        text,
        min: 1,
        max: 0,
    }
}

/// An absent element.
pub(crate) const EMPTY: Value<'static> = Value {
    text: "",
    min: 0,
    max: 0,
};

/// An optional value: absent when `None`.
pub(crate) fn optional(text: Option<&str>, min: usize, max: usize) -> Value<'_> {
    match text {
        Some(text) => Value { text, min, max },
        None => EMPTY,
    }
}

/// One element: a simple value or a composite of components.
#[derive(Debug, Clone)]
pub(crate) enum Element<'a> {
    Simple(Value<'a>),
    Composite(Vec<Value<'a>>),
}

impl<'a> From<Value<'a>> for Element<'a> {
    fn from(value: Value<'a>) -> Self {
        Element::Simple(value)
    }
}

/// Writes segments into one interchange, checking every value and counting segments.
#[derive(Debug)]
pub(crate) struct SegmentWriter {
    delimiters: Delimiters,
    layout: Layout,
    out: String,
    loop_id: &'static str,
    context: String,
    segments_in_transaction: usize,
}

impl SegmentWriter {
    pub(crate) fn new(delimiters: Delimiters, layout: Layout) -> SegmentWriter {
        SegmentWriter {
            delimiters,
            layout,
            out: String::new(),
            loop_id: "ISA",
            context: String::new(),
            segments_in_transaction: 0,
        }
    }

    /// Names the loop the next segments belong to, for errors.
    pub(crate) fn enter(&mut self, loop_id: &'static str) {
        self.loop_id = loop_id;
    }

    /// Names the transaction, claim or line the next segments belong to, for errors.
    pub(crate) fn set_context(&mut self, context: String) {
        self.context = context;
    }

    /// An error at `segment`-`element` of the current loop.
    pub(crate) fn error(
        &self,
        segment: &'static str,
        element: u8,
        problem: BuildProblem,
    ) -> BuildError {
        self.error_at(segment, element, None, problem)
    }

    fn error_at(
        &self,
        segment: &'static str,
        element: u8,
        component: Option<u8>,
        problem: BuildProblem,
    ) -> BuildError {
        BuildError {
            location: Location {
                segment,
                element,
                component,
                loop_id: self.loop_id,
                context: self.context.clone(),
            },
            problem,
        }
    }

    fn check(
        &self,
        segment: &'static str,
        element: u8,
        component: Option<u8>,
        value: &Value<'_>,
    ) -> Result<(), BuildError> {
        let refuse = |problem| Err(self.error_at(segment, element, component, problem));
        let length = value.text.len();
        if length == 0 {
            return if value.min > 0 {
                refuse(BuildProblem::Empty)
            } else {
                Ok(())
            };
        }
        for character in value.text.chars() {
            if !(character.is_ascii_graphic() || character == ' ') {
                return refuse(BuildProblem::NotPrintableAscii(character));
            }
            // Printable ASCII is one byte per character, so the cast keeps the value.
            if let Some(name) = self.delimiters.name_of(character as u8) {
                return refuse(BuildProblem::ContainsDelimiter(name));
            }
        }
        if value.text.starts_with(' ') || value.text.ends_with(' ') {
            return refuse(BuildProblem::SurroundingSpaces);
        }
        if length < value.min {
            return refuse(BuildProblem::TooShort { min: value.min });
        }
        if value.max > 0 && length > value.max {
            return refuse(BuildProblem::TooLong { max: value.max });
        }
        Ok(())
    }

    /// Writes one segment; trailing empty elements and components are dropped, as X12 requires.
    pub(crate) fn segment(
        &mut self,
        id: &'static str,
        elements: &[Element<'_>],
    ) -> Result<(), BuildError> {
        let mut rendered: Vec<String> = Vec::with_capacity(elements.len());
        for (index, element) in elements.iter().enumerate() {
            let position = u8::try_from(index + 1).unwrap_or(u8::MAX);
            match element {
                Element::Simple(value) => {
                    self.check(id, position, None, value)?;
                    rendered.push(value.text.to_owned());
                }
                Element::Composite(components) => {
                    let mut parts: Vec<&str> = Vec::with_capacity(components.len());
                    for (component_index, value) in components.iter().enumerate() {
                        let component = u8::try_from(component_index + 1).unwrap_or(u8::MAX);
                        self.check(id, position, Some(component), value)?;
                        parts.push(value.text);
                    }
                    while parts.last().is_some_and(|part| part.is_empty()) {
                        parts.pop();
                    }
                    rendered.push(parts.join(&self.delimiters.component().to_string()));
                }
            }
        }
        while rendered.last().is_some_and(String::is_empty) {
            rendered.pop();
        }
        self.out.push_str(id);
        for element in &rendered {
            self.out.push(self.delimiters.element());
            self.out.push_str(element);
        }
        self.terminate();
        Ok(())
    }

    fn terminate(&mut self) {
        self.out.push(self.delimiters.segment());
        if self.layout == Layout::LinePerSegment && self.delimiters.segment != b'\n' {
            self.out.push('\n');
        }
        self.segments_in_transaction += 1;
    }

    /// Writes the ISA with its fixed-width fields; `ISA13` is the caller's control number.
    pub(crate) fn isa(&mut self, header: &InterchangeHeader<'_>) -> Result<(), BuildError> {
        self.enter("ISA");
        let control = nine_digits(header.control_number)
            .ok_or_else(|| self.error("ISA", 13, control_range(header.control_number)))?;
        let fixed = |element: u8, value: &str, min: usize, width: usize| {
            self.check("ISA", element, None, &text(value, min, width))?;
            Ok::<String, BuildError>(format!("{value:<width$}"))
        };
        let fields = [
            "00".to_owned(),
            " ".repeat(10),
            "00".to_owned(),
            " ".repeat(10),
            fixed(5, header.sender_qualifier, 2, 2)?,
            fixed(6, header.sender_id, 1, 15)?,
            fixed(7, header.receiver_qualifier, 2, 2)?,
            fixed(8, header.receiver_id, 1, 15)?,
            yymmdd(header.created.date()),
            hhmm(header.created),
            self.delimiters.repetition().to_string(),
            "00501".to_owned(),
            control,
            "0".to_owned(),
            header.usage.to_owned(),
            self.delimiters.component().to_string(),
        ];
        self.out.push_str("ISA");
        for field in fields {
            self.out.push(self.delimiters.element());
            self.out.push_str(&field);
        }
        self.terminate();
        Ok(())
    }

    /// Starts counting the segments of a transaction set (ST is the first).
    pub(crate) fn start_transaction(&mut self) {
        self.segments_in_transaction = 0;
    }

    /// Segments written since `start_transaction`, ST and this count's SE included.
    pub(crate) fn transaction_segment_count(&self) -> usize {
        self.segments_in_transaction + 1
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// What the ISA carries besides delimiters.
#[derive(Debug)]
pub(crate) struct InterchangeHeader<'a> {
    pub(crate) sender_qualifier: &'a str,
    pub(crate) sender_id: &'a str,
    pub(crate) receiver_qualifier: &'a str,
    pub(crate) receiver_id: &'a str,
    pub(crate) created: NaiveDateTime,
    pub(crate) control_number: u32,
    pub(crate) usage: &'a str,
}

/// A control number as nine zero-padded digits (ISA13), if it is in 1..=999999999.
pub(crate) fn nine_digits(number: u32) -> Option<String> {
    (1..=999_999_999)
        .contains(&number)
        .then(|| format!("{number:09}"))
}

pub(crate) fn control_range(number: u32) -> BuildProblem {
    BuildProblem::ControlNumberOutOfRange(number)
}

pub(crate) fn ccyymmdd(date: NaiveDate) -> Option<String> {
    (1..=9999)
        .contains(&date.year())
        .then(|| format!("{:04}{:02}{:02}", date.year(), date.month(), date.day()))
}

fn yymmdd(date: NaiveDate) -> String {
    format!(
        "{:02}{:02}{:02}",
        date.year().rem_euclid(100),
        date.month(),
        date.day()
    )
}

pub(crate) fn hhmm(time: NaiveDateTime) -> String {
    format!("{:02}{:02}", time.hour(), time.minute())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> SegmentWriter {
        let mut writer = SegmentWriter::new(Delimiters::default(), Layout::Compact);
        writer.enter("2010BA");
        writer
    }

    #[test]
    fn given_a_value_with_a_delimiter_when_written_then_the_error_names_segment_element_and_loop() {
        let error = writer()
            .segment(
                "NM1",
                &[
                    code("IL").into(),
                    code("1").into(),
                    text("O*NEIL", 1, 60).into(),
                ],
            )
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "NM1-03 of loop 2010BA: contains the element separator"
        );
    }

    #[test]
    fn given_bad_characters_and_lengths_when_written_then_each_is_refused() {
        let refuse = |value: Value<'_>| {
            writer()
                .segment("REF", &[code("6R").into(), value.into()])
                .unwrap_err()
                .problem
        };
        assert_eq!(
            refuse(text("A~B", 1, 30)),
            BuildProblem::ContainsDelimiter("segment terminator")
        );
        assert_eq!(
            refuse(text("A:B", 1, 30)),
            BuildProblem::ContainsDelimiter("component separator")
        );
        assert_eq!(
            refuse(text("A^B", 1, 30)),
            BuildProblem::ContainsDelimiter("repetition separator")
        );
        assert_eq!(
            refuse(text("Müller", 1, 30)),
            BuildProblem::NotPrintableAscii('ü')
        );
        assert_eq!(
            refuse(text("A\nB", 1, 30)),
            BuildProblem::NotPrintableAscii('\n')
        );
        assert_eq!(refuse(text("AB ", 1, 30)), BuildProblem::SurroundingSpaces);
        assert_eq!(refuse(text("", 1, 30)), BuildProblem::Empty);
        assert_eq!(refuse(text("A", 2, 30)), BuildProblem::TooShort { min: 2 });
        assert_eq!(
            refuse(text(&"A".repeat(31), 1, 30)),
            BuildProblem::TooLong { max: 30 }
        );
    }

    #[test]
    fn given_trailing_empty_elements_and_components_when_written_then_they_are_dropped() {
        let mut writer = writer();
        writer
            .segment(
                "SV1",
                &[
                    Element::Composite(vec![code("HC"), code("97140"), EMPTY, EMPTY]),
                    code("80").into(),
                    EMPTY.into(),
                    EMPTY.into(),
                ],
            )
            .unwrap();
        assert_eq!(writer.finish(), "SV1*HC:97140*80~");
    }

    #[test]
    fn given_unusable_delimiters_when_declared_then_they_are_refused() {
        assert!(Delimiters::new('*', ':', '^', '~').is_ok());
        assert!(Delimiters::new('|', '>', '^', '\n').is_ok());
        assert!(Delimiters::new('*', '*', '^', '~').is_err());
        assert!(Delimiters::new('A', ':', '^', '~').is_err());
        assert!(Delimiters::new(' ', ':', '^', '~').is_err());
        assert!(Delimiters::new('*', ':', 'é', '~').is_err());
    }

    #[test]
    fn given_a_header_when_the_isa_is_written_then_it_is_106_characters_wide() {
        let mut writer = SegmentWriter::new(Delimiters::default(), Layout::Compact);
        let created = NaiveDate::from_ymd_opt(2026, 3, 4)
            .and_then(|date| date.and_hms_opt(9, 5, 0))
            .unwrap();
        let header = InterchangeHeader {
            sender_qualifier: "ZZ",
            sender_id: "SUBMITTER1",
            receiver_qualifier: "30",
            receiver_id: "330897513",
            created,
            control_number: 42,
            usage: "T",
        };
        writer.isa(&header).unwrap();
        let isa = writer.finish();
        assert_eq!(isa.len(), 106);
        assert_eq!(
            isa,
            "ISA*00*          *00*          *ZZ*SUBMITTER1     *30*330897513      *260304*0905*^*00501*000000042*0*T*:~"
        );
        let mut writer = SegmentWriter::new(Delimiters::default(), Layout::Compact);
        let error = writer
            .isa(&InterchangeHeader {
                control_number: 1_000_000_000,
                ..header
            })
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "ISA-13 of loop ISA: control number 1000000000 is not between 1 and 999999999"
        );
    }
}
