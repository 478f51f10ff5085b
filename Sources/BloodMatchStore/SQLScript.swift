/// Splits a SQL script into single statements, because the extended query protocol that
/// PostgresNIO speaks takes one statement at a time.
///
/// Understands `--` and `/* */` comments, single-quoted strings, double-quoted identifiers and
/// dollar-quoted bodies (`$$ … $$`, `$tag$ … $tag$`); that covers every migration in this project.
public enum SQLScript {
    /// The statements of `script`, trimmed, without empty ones, without the closing `;`.
    public static func statements(in script: String) -> [String] {
        let chars = Array(script.unicodeScalars)
        var statements: [String] = []
        var current = String.UnicodeScalarView()
        var i = 0
        func peek(_ offset: Int) -> Unicode.Scalar? { i + offset < chars.count ? chars[i + offset] : nil }
        while i < chars.count {
            let c = chars[i]
            if c == "-", peek(1) == "-" {
                while i < chars.count, chars[i] != "\n" { i += 1 }
                continue
            }
            if c == "/", peek(1) == "*" {
                i += 2
                while i < chars.count, !(chars[i] == "*" && peek(1) == "/") { i += 1 }
                i += 2
                continue
            }
            if c == "'" || c == "\"" {
                current.append(c); i += 1
                while i < chars.count {
                    current.append(chars[i])
                    if chars[i] == c {
                        if peek(1) == c { i += 1; current.append(chars[i]) } else { break }
                    }
                    i += 1
                }
                i += 1
                continue
            }
            if c == "$" {
                var j = i + 1
                while j < chars.count, chars[j] == "_" || chars[j].properties.isAlphabetic { j += 1 }
                if j < chars.count, chars[j] == "$" {
                    let tag = Array(chars[i...j])
                    current.append(contentsOf: tag)
                    i = j + 1
                    while i < chars.count {
                        if chars[i] == "$", i + tag.count <= chars.count, Array(chars[i..<(i + tag.count)]) == tag {
                            current.append(contentsOf: tag)
                            i += tag.count
                            break
                        }
                        current.append(chars[i]); i += 1
                    }
                    continue
                }
            }
            if c == ";" {
                append(&statements, current); current = .init(); i += 1
                continue
            }
            current.append(c); i += 1
        }
        append(&statements, current)
        return statements
    }

    private static func append(_ statements: inout [String], _ scalars: String.UnicodeScalarView) {
        let text = String(scalars).trimmingCharacters(in: .whitespacesAndNewlines)
        if !text.isEmpty { statements.append(text) }
    }
}

import Foundation
