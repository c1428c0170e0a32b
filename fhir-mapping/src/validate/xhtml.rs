//! Narrative XHTML (`Narrative.div`) under the rules of R4 narrative.html: well-formed
//! XML with a single `div` root in the XHTML namespace, only the basic HTML 4 formatting
//! elements and attributes (txt-1), no scripts or event attributes, some text a person
//! can read (txt-2), and no entities other than XML's own and numeric references.

use quick_xml::NsReader;
use quick_xml::errors::{Error, IllFormedError, SyntaxError};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

/// The XHTML namespace, required on the root `div`.
const XHTML_NS: &[u8] = b"http://www.w3.org/1999/xhtml";

/// Elements a narrative may contain (local names): HTML 4 chapters 7 to 11 without
/// forms, scripts, objects and frames, and chapter 15.
const ELEMENTS: &[&str] = &[
    "a",
    "abbr",
    "acronym",
    "address",
    "area",
    "b",
    "basefont",
    "bdo",
    "big",
    "blockquote",
    "br",
    "caption",
    "center",
    "cite",
    "code",
    "col",
    "colgroup",
    "dd",
    "del",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "font",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "map",
    "ol",
    "p",
    "pre",
    "q",
    "s",
    "samp",
    "small",
    "span",
    "strike",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "tt",
    "u",
    "ul",
    "var",
];

/// Attributes a narrative may use, besides `xmlns` and `xmlns:*` declarations.
const ATTRIBUTES: &[&str] = &[
    "xml:lang",
    "lang",
    "id",
    "class",
    "style",
    "title",
    "dir",
    "href",
    "name",
    "src",
    "alt",
    "width",
    "height",
    "border",
    "align",
    "valign",
    "colspan",
    "rowspan",
    "cellpadding",
    "cellspacing",
    "summary",
    "span",
    "scope",
    "abbr",
    "axis",
    "headers",
    "char",
    "charoff",
    "frame",
    "rules",
    "bgcolor",
    "color",
    "face",
    "size",
    "type",
    "start",
    "value",
    "compact",
    "clear",
    "noshade",
    "nowrap",
    "hspace",
    "vspace",
    "longdesc",
    "usemap",
    "shape",
    "coords",
    "target",
    "rel",
    "rev",
    "hreflang",
    "charset",
    "cite",
    "datetime",
];

/// Entities XML defines itself.
const XML_ENTITIES: &[&str] = &["lt", "gt", "amp", "apos", "quot"];

/// Common HTML entities and their code points, to suggest the numeric reference.
const HTML_ENTITIES: &[(&str, u32)] = &[
    ("nbsp", 160),
    ("iexcl", 161),
    ("cent", 162),
    ("pound", 163),
    ("yen", 165),
    ("sect", 167),
    ("copy", 169),
    ("laquo", 171),
    ("shy", 173),
    ("reg", 174),
    ("deg", 176),
    ("plusmn", 177),
    ("sup2", 178),
    ("sup3", 179),
    ("micro", 181),
    ("para", 182),
    ("middot", 183),
    ("sup1", 185),
    ("raquo", 187),
    ("frac14", 188),
    ("frac12", 189),
    ("frac34", 190),
    ("iquest", 191),
    ("Agrave", 192),
    ("Aacute", 193),
    ("Acirc", 194),
    ("Auml", 196),
    ("Aring", 197),
    ("AElig", 198),
    ("Ccedil", 199),
    ("Egrave", 200),
    ("Eacute", 201),
    ("Ecirc", 202),
    ("Ntilde", 209),
    ("Ouml", 214),
    ("times", 215),
    ("Oslash", 216),
    ("Uuml", 220),
    ("szlig", 223),
    ("agrave", 224),
    ("aacute", 225),
    ("acirc", 226),
    ("auml", 228),
    ("aring", 229),
    ("aelig", 230),
    ("ccedil", 231),
    ("egrave", 232),
    ("eacute", 233),
    ("ecirc", 234),
    ("euml", 235),
    ("igrave", 236),
    ("iacute", 237),
    ("icirc", 238),
    ("iuml", 239),
    ("ntilde", 241),
    ("ograve", 242),
    ("oacute", 243),
    ("ocirc", 244),
    ("ouml", 246),
    ("divide", 247),
    ("oslash", 248),
    ("ugrave", 249),
    ("uacute", 250),
    ("ucirc", 251),
    ("uuml", 252),
    ("ensp", 8194),
    ("emsp", 8195),
    ("thinsp", 8201),
    ("ndash", 8211),
    ("mdash", 8212),
    ("lsquo", 8216),
    ("rsquo", 8217),
    ("sbquo", 8218),
    ("ldquo", 8220),
    ("rdquo", 8221),
    ("bdquo", 8222),
    ("dagger", 8224),
    ("bull", 8226),
    ("hellip", 8230),
    ("prime", 8242),
    ("euro", 8364),
    ("trade", 8482),
    ("larr", 8592),
    ("uarr", 8593),
    ("rarr", 8594),
    ("darr", 8595),
    ("minus", 8722),
    ("le", 8804),
    ("ge", 8805),
    ("ne", 8800),
];

/// Checks a narrative's XHTML (`Narrative.div`) against the rules of R4 narrative.html:
/// returns every problem found, each one sentence for a person; empty when valid.
pub(crate) fn check(div: &str) -> Vec<String> {
    let mut problems = Problems::default();
    if let Some(c) = div.chars().find(|&c| !is_xml_char(c)) {
        problems.not_well_formed(&format!(
            "it contains the character U+{:04X}, which XML does not allow",
            u32::from(c)
        ));
        return problems.0;
    }
    let mut reader = NsReader::from_str(div);
    reader.config_mut().check_comments = true;
    // names of the open elements, innermost last
    let mut open: Vec<String> = Vec::new();
    let mut root_seen = false;
    let mut readable = false;
    loop {
        let (namespace, event) = match reader.read_resolved_event() {
            Ok((namespace, event)) => (Namespace::from(namespace), event),
            Err(error) => {
                problems.not_well_formed(&reason(&error));
                return problems.0;
            }
        };
        match event {
            Event::Start(element) | Event::Empty(element) if open.is_empty() && root_seen => {
                let name = text(element.name().as_ref());
                problems.not_well_formed(&format!(
                    "there is more than one root element (a second one, <{name}>, follows \
                     the <div>)"
                ));
                return problems.0;
            }
            Event::Start(ref element) | Event::Empty(ref element) => {
                if !is_name(element.name().as_ref()) {
                    problems.not_well_formed(&bad_name(element.name().as_ref()));
                    return problems.0;
                }
                let local = text(element.local_name().as_ref());
                check_element(element, &local, &namespace, open.is_empty(), &mut problems);
                readable |= local == "img";
                root_seen = true;
                if matches!(event, Event::Start(_)) {
                    open.push(text(element.name().as_ref()));
                }
            }
            Event::End(_) => {
                open.pop();
            }
            Event::Text(content) => {
                if content.windows(3).any(|w| w == b"]]>") {
                    problems.not_well_formed("text may not contain `]]>` (write ]]&gt;)");
                }
                if content.iter().any(|b| !is_xml_space(*b)) {
                    if open.is_empty() {
                        problems.outside_root();
                    } else {
                        readable = true;
                    }
                }
            }
            Event::CData(content) => {
                if open.is_empty() {
                    problems.outside_root();
                } else if content.iter().any(|b| !is_xml_space(*b)) {
                    readable = true;
                }
            }
            Event::GeneralRef(reference) => {
                let name = text(&reference);
                match reference_problem(&name) {
                    Some(problem) => problems.push(problem),
                    None if open.is_empty() => problems.outside_root(),
                    None => readable |= !resolves_to_space(&name),
                }
            }
            Event::Comment(_) => {
                if open.is_empty() {
                    problems.outside_root();
                }
            }
            Event::Decl(_) => problems.push(
                "the narrative may not have an XML declaration (<?xml ...?>): it starts with \
                 its <div>"
                    .to_owned(),
            ),
            Event::PI(_) => problems
                .push("the narrative may not contain processing instructions (<?...?>)".to_owned()),
            Event::DocType(_) => {
                problems.push("the narrative may not contain a DOCTYPE".to_owned());
            }
            Event::Eof => break,
        }
    }
    if let Some(name) = open.last() {
        problems.not_well_formed(&format!("the <{name}> element is never closed"));
        return problems.0;
    }
    if !root_seen {
        problems.not_well_formed(if div.bytes().all(is_xml_space) {
            "it is empty"
        } else {
            "there is no <div> element"
        });
        return problems.0;
    }
    if !readable {
        problems
            .push("the narrative has no text: it must say something a person can read".to_owned());
    }
    problems.0
}

/// The problems found so far, each message once, in the order found.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn push(&mut self, problem: String) {
        if !self.0.contains(&problem) {
            self.0.push(problem);
        }
    }

    fn not_well_formed(&mut self, why: &str) {
        self.push(format!("the narrative is not well-formed XHTML: {why}"));
    }

    fn outside_root(&mut self) {
        self.push(
            "the narrative may have nothing but white space outside its <div> element".to_owned(),
        );
    }
}

/// The namespace of an element, owned so that the reader can move on.
enum Namespace {
    None,
    Bound(Vec<u8>),
    UndeclaredPrefix(Vec<u8>),
}

impl From<ResolveResult<'_>> for Namespace {
    fn from(resolved: ResolveResult<'_>) -> Self {
        match resolved {
            ResolveResult::Unbound => Self::None,
            ResolveResult::Bound(namespace) => Self::Bound(namespace.as_ref().to_vec()),
            ResolveResult::Unknown(prefix) => Self::UndeclaredPrefix(prefix),
        }
    }
}

/// Bytes of the (UTF-8) source as text, for messages and comparisons.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// XML white space: space, tab, carriage return, line feed.
fn is_xml_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// The characters XML 1.0 allows in a document.
fn is_xml_char(c: char) -> bool {
    matches!(u32::from(c),
        0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x1_0000..=0x10_FFFF)
}

/// True when `name` is an XML name: a letter, `_`, `:` or any non-ASCII character first,
/// then also digits, `-` and `.` (a simplification of the XML 1.0 `Name` production).
fn is_name(name: &[u8]) -> bool {
    let first = |b: &u8| b.is_ascii_alphabetic() || matches!(b, b'_' | b':') || !b.is_ascii();
    match name.split_first() {
        Some((head, tail)) => {
            first(head)
                && tail
                    .iter()
                    .all(|b| first(b) || b.is_ascii_digit() || matches!(b, b'-' | b'.'))
        }
        None => false,
    }
}

/// Why a tag with a name that is not an XML name could not be read.
fn bad_name(name: &[u8]) -> String {
    if name.is_empty() {
        "a `<` must start a tag (write &lt; for the character <)".to_owned()
    } else {
        format!("<{}> is not a valid element name", text(name))
    }
}

/// Checks an element's name, namespace and attributes.
fn check_element(
    element: &BytesStart<'_>,
    local: &str,
    namespace: &Namespace,
    is_root: bool,
    problems: &mut Problems,
) {
    let name = text(element.name().as_ref());
    match namespace {
        Namespace::Bound(ns) if ns == XHTML_NS => {}
        Namespace::UndeclaredPrefix(prefix) => problems.not_well_formed(&format!(
            "the prefix `{}` of <{name}> is not declared",
            text(prefix)
        )),
        Namespace::None if is_root => problems.push(format!(
            "the narrative's <{name}> must declare the XHTML namespace: \
             xmlns=\"http://www.w3.org/1999/xhtml\""
        )),
        Namespace::Bound(ns) if is_root => problems.push(format!(
            "the narrative's <{name}> is in the namespace `{}`, but it must be in the XHTML \
             namespace, http://www.w3.org/1999/xhtml",
            text(ns)
        )),
        Namespace::None | Namespace::Bound(_) => problems.push(format!(
            "every element of the narrative must be in the XHTML namespace \
             (http://www.w3.org/1999/xhtml), and <{name}> is not"
        )),
    }
    if is_root && local != "div" {
        problems.push(format!(
            "the narrative's root element must be <div>, not <{name}>"
        ));
    }
    if !ELEMENTS.contains(&local) {
        problems.push(format!("the narrative may not contain <{local}> elements"));
    }
    for attribute in element.attributes() {
        let attribute = match attribute {
            Ok(attribute) => attribute,
            Err(error) => {
                problems
                    .not_well_formed(&format!("an attribute of <{name}> is malformed ({error})"));
                return;
            }
        };
        let key = text(attribute.key.as_ref());
        if !is_name(attribute.key.as_ref()) {
            problems.not_well_formed(&format!(
                "`{key}` is not a valid attribute name (on <{name}>)"
            ));
            return;
        }
        if attribute.value.contains(&b'<') {
            problems.not_well_formed(&format!(
                "the value of `{key}` on <{name}> contains `<` (write &lt;)"
            ));
        }
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        let key_local = key.rsplit(':').next().unwrap_or(&key);
        if key_local
            .as_bytes()
            .get(..2)
            .is_some_and(|start| start.eq_ignore_ascii_case(b"on"))
        {
            problems
                .push("event attributes such as onclick are not allowed in a narrative".to_owned());
            continue;
        }
        if !ATTRIBUTES.contains(&key.as_str()) {
            problems.push(format!(
                "the attribute `{key}` is not allowed in a narrative (on <{name}>)"
            ));
            continue;
        }
        let raw = text(&attribute.value);
        for problem in attribute_reference_problems(&raw) {
            problems.push(problem);
        }
        if key == "href" || key == "src" {
            let value = attribute
                .unescape_value()
                .map_or_else(|_| raw.clone(), |value| value.into_owned());
            if is_script_address(&value) {
                problems.push(format!(
                    "script addresses (javascript: or vbscript:) are not allowed in a \
                     narrative's `{key}` attributes"
                ));
            }
        }
    }
}

/// True when an address runs a script: `javascript:` or `vbscript:`, in any case, also
/// with white space or control characters slipped in (browsers ignore those).
fn is_script_address(value: &str) -> bool {
    let squeezed: String = value
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .flat_map(char::to_lowercase)
        .collect();
    squeezed.starts_with("javascript:") || squeezed.starts_with("vbscript:")
}

/// The problem with a reference `&name;` (given without `&` and `;`), if any.
fn reference_problem(name: &str) -> Option<String> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix('x') {
            Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                u32::from_str_radix(hex, 16).ok()
            }
            Some(_) => None,
            None if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) => {
                number.parse().ok()
            }
            None => None,
        };
        return match code.and_then(char::from_u32) {
            Some(c) if is_xml_char(c) => None,
            _ => Some(format!(
                "`&{name};` is not a valid character reference: write &#NNN; (decimal) or \
                 &#xHHH; (hexadecimal) with the code of a character XML allows"
            )),
        };
    }
    if XML_ENTITIES.contains(&name) {
        return None;
    }
    Some(
        match HTML_ENTITIES.iter().find(|(entity, _)| *entity == name) {
            Some((_, code)) => {
                format!("`&{name};` is not an XML entity: write &#{code}; instead")
            }
            None => format!(
                "`&{name};` is not an XML entity: write the character itself or its \
                 numeric reference (&#NNN;) instead"
            ),
        },
    )
}

/// True when a valid reference stands for white space (which is not readable text).
fn resolves_to_space(name: &str) -> bool {
    matches!(
        name,
        "#32" | "#9" | "#10" | "#13" | "#x20" | "#x9" | "#xA" | "#xa" | "#xD" | "#xd"
    )
}

/// The problems with the references (`&...;`) in an attribute's raw value.
fn attribute_reference_problems(raw: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        rest = &rest[at + 1..];
        let name_end = rest
            .find(|c: char| c == ';' || c == '&' || c.is_whitespace() || c == '<')
            .filter(|&end| rest[end..].starts_with(';'));
        match name_end {
            Some(end) if end > 0 => {
                if let Some(problem) = reference_problem(&rest[..end]) {
                    found.push(problem);
                }
                rest = &rest[end + 1..];
            }
            _ => found.push(
                "the narrative is not well-formed XHTML: an `&` in an attribute value must \
                 start a reference such as &amp; (write &amp; for the character &)"
                    .to_owned(),
            ),
        }
    }
    found
}

/// A short reason, for a person, why the XML could not be read.
fn reason(error: &Error) -> String {
    match error {
        Error::Syntax(syntax) => match syntax {
            SyntaxError::UnclosedTag => "a tag is not closed with `>`".to_owned(),
            SyntaxError::UnclosedComment => "a comment is not closed with `-->`".to_owned(),
            SyntaxError::UnclosedCData => "a CDATA section is not closed with `]]>`".to_owned(),
            SyntaxError::UnclosedDoctype => "a DOCTYPE is not closed with `>`".to_owned(),
            SyntaxError::UnclosedPIOrXmlDecl => {
                "a processing instruction is not closed with `?>`".to_owned()
            }
            SyntaxError::InvalidBangMarkup => {
                "there is unknown markup starting with `<!`".to_owned()
            }
        },
        Error::IllFormed(ill) => match ill {
            IllFormedError::MismatchedEndTag { expected, found } => {
                format!("</{found}> was found where </{expected}> was expected")
            }
            IllFormedError::UnmatchedEndTag(name) => {
                format!("</{name}> closes an element that was never opened")
            }
            IllFormedError::DoubleHyphenInComment => "a comment contains `--`".to_owned(),
            IllFormedError::UnclosedReference => {
                "an `&` must start a reference such as &amp; (write &amp; for the character &)"
                    .to_owned()
            }
            other => other.to_string(),
        },
        Error::InvalidAttr(attribute) => format!("an attribute is malformed ({attribute})"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    fn div(inner: &str) -> String {
        format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{inner}</div>")
    }

    fn valid(narrative: &str) {
        assert_eq!(check(narrative), Vec::<String>::new(), "{narrative}");
    }

    /// The problems found, which must include one containing `part`.
    fn refused(narrative: &str, part: &str) -> Vec<String> {
        let problems = check(narrative);
        assert!(
            problems.iter().any(|p| p.contains(part)),
            "{narrative}: expected a problem containing {part:?}, got {problems:?}"
        );
        problems
    }

    #[test]
    fn simple_div_is_valid() {
        valid(&div("Squats: 3 sets of 10"));
        valid(&div("<p>Hold for <b>10</b> seconds.</p>"));
        valid(&format!("  {}\n", div("text")));
    }

    #[test]
    fn table_img_and_link_are_valid() {
        valid(&div(
            "<table border=\"1\" cellpadding=\"2\"><thead><tr><th scope=\"col\">Exercise</th>\
             </tr></thead><tbody><tr><td colspan=\"2\" align=\"left\">Bridge</td></tr></tbody>\
             </table><img src=\"#image1\" alt=\"bridge\" width=\"100\"/>\
             <a href=\"https://example.org/help?a=1&amp;b=2\" title=\"help\">help</a>",
        ));
        valid(&div("<ul><li>one</li><li>two</li></ul><br/><hr/>"));
    }

    #[test]
    fn an_image_alone_is_enough() {
        valid(&div("<img src=\"#pic\" alt=\"\"/>"));
    }

    #[test]
    fn style_and_language_attributes_are_valid() {
        valid(&div(
            "<span style=\"color: red\" class=\"x\" lang=\"de\" xml:lang=\"de\">Rot</span>",
        ));
        valid("<div xmlns=\"http://www.w3.org/1999/xhtml\" style=\"margin: 0\" id=\"n1\">x</div>");
    }

    #[test]
    fn prefixed_xhtml_is_valid() {
        valid(
            "<xhtml:div xmlns:xhtml=\"http://www.w3.org/1999/xhtml\"><xhtml:p>Hi</xhtml:p></xhtml:div>",
        );
    }

    #[test]
    fn comments_and_cdata_inside_are_valid() {
        valid(&div("<!-- generated --><p><![CDATA[a < b]]></p>"));
    }

    #[test]
    fn script_is_refused() {
        refused(
            &div("<p>x</p><script>alert(1)</script>"),
            "the narrative may not contain <script> elements",
        );
        for name in [
            "style", "form", "input", "iframe", "object", "embed", "body", "svg",
        ] {
            refused(
                &div(&format!("text<{name}/>")),
                &format!("may not contain <{name}> elements"),
            );
        }
    }

    #[test]
    fn event_attributes_are_refused() {
        refused(
            &div("<p onclick=\"alert(1)\">x</p>"),
            "event attributes such as onclick are not allowed in a narrative",
        );
        refused(&div("<img src=\"#a\" ONLOAD=\"x()\"/>"), "event attributes");
        refused(
            "<div xmlns=\"http://www.w3.org/1999/xhtml\" onmouseover=\"x()\">x</div>",
            "event attributes",
        );
    }

    #[test]
    fn script_addresses_are_refused() {
        refused(&div("<a href=\"javascript:alert(1)\">x</a>"), "javascript:");
        refused(
            &div("<a href=\"  JavaScript:alert(1)\">x</a>"),
            "javascript:",
        );
        refused(
            &div("<a href=\"java&#x09;script:alert(1)\">x</a>"),
            "javascript:",
        );
        refused(
            &div("<a href=\"&#106;avascript:alert(1)\">x</a>"),
            "javascript:",
        );
        refused(&div("<img src=\"vbscript:msgbox\"/>"), "vbscript:");
        valid(&div("<a href=\"https://example.org/javascript:\">x</a>"));
    }

    #[test]
    fn other_attributes_are_refused() {
        refused(
            &div("<p data-x=\"1\">x</p>"),
            "the attribute `data-x` is not allowed",
        );
        refused(
            &div("<a xlink:href=\"#x\" xmlns:xlink=\"http://www.w3.org/1999/xlink\">x</a>"),
            "`xlink:href`",
        );
    }

    #[test]
    fn root_must_be_div() {
        refused(
            "<p xmlns=\"http://www.w3.org/1999/xhtml\">text</p>",
            "the narrative's root element must be <div>, not <p>",
        );
        refused(
            "<body xmlns=\"http://www.w3.org/1999/xhtml\">text</body>",
            "<body>",
        );
    }

    #[test]
    fn namespace_is_required() {
        refused("<div>text</div>", "must declare the XHTML namespace");
        refused(
            "<div xmlns=\"http://example.org\">text</div>",
            "must be in the XHTML namespace",
        );
        refused(
            &div("<p xmlns=\"\">x</p>"),
            "every element of the narrative",
        );
    }

    #[test]
    fn empty_div_is_refused() {
        let message = "the narrative has no text: it must say something a person can read";
        refused("<div xmlns=\"http://www.w3.org/1999/xhtml\"/>", message);
        refused(&div(""), message);
        refused(&div("  <p> </p>\n"), message);
        refused(&div("<!-- nothing -->"), message);
    }

    #[test]
    fn html_entities_are_refused() {
        let problems = refused(
            &div("a&nbsp;b"),
            "`&nbsp;` is not an XML entity: write &#160; instead",
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        refused(&div("&foo;"), "`&foo;` is not an XML entity");
        refused(
            &div("<a href=\"x?a=1&copy;\">x</a>"),
            "`&copy;` is not an XML entity: write &#169;",
        );
    }

    #[test]
    fn xml_and_numeric_references_are_valid() {
        valid(&div("a&#160;b"));
        valid(&div("&#xA0;&lt;&gt;&amp;&apos;&quot;"));
        refused(&div("x&#0;"), "not a valid character reference");
        refused(&div("x&#xD800;"), "not a valid character reference");
    }

    #[test]
    fn malformed_is_refused() {
        let well = "the narrative is not well-formed XHTML";
        refused(&div("<p>unclosed"), well);
        refused(&div("<b><i>x</b></i>"), well);
        refused("<div xmlns=\"http://www.w3.org/1999/xhtml\">x", well);
        refused("<div xmlns=\"http://www.w3.org/1999/xhtml\"", well);
        refused(&div("a & b"), well);
        refused(&div("<p class=x>x</p>"), well);
        refused(&div("<p class=\"a\" class=\"b\">x</p>"), well);
        refused(&div("<td nowrap>x</td>"), well);
        refused(&div("x</p>"), well);
        refused(&div("<!-- a -- b -->x"), well);
        refused(&div("x\u{1}"), well);
        refused("", well);
        refused("just text", well);
        refused(
            &format!("{}{}", div("a"), div("b")),
            "more than one root element",
        );
        refused(&div("<a href=\"x?a=1&b=2\">x</a>"), well);
        refused(&div("<foo:p>x</foo:p>"), "is not declared");
        refused(&div("x < y"), "a `<` must start a tag");
        refused(&div("<1p>x</1p>"), "not a valid element name");
        refused(&div("x ]]> y"), "`]]>`");
        refused(&div("<p title=\"a<b\">x</p>"), "contains `<`");
        refused(" \n", "it is empty");
    }

    #[test]
    fn nothing_outside_the_root() {
        let outside = "nothing but white space outside its <div>";
        refused(&format!("text {}", div("a")), outside);
        refused(&format!("{}<!-- c -->", div("a")), outside);
        refused(
            &format!("<?xml version=\"1.0\"?>{}", div("a")),
            "XML declaration",
        );
        refused(&format!("<!DOCTYPE html>{}", div("a")), "DOCTYPE");
        refused(&div("<?php echo 1 ?>x"), "processing instructions");
    }

    #[test]
    fn each_problem_is_reported_once() {
        let problems = check(&div(
            "<p onclick=\"a\">x</p><p onclick=\"b\">y</p><script/><script/>",
        ));
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
