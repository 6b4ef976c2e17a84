#!/usr/bin/env python3
"""Write fixtures/vocab/corpus.txt: tokenizer conformance inputs, one JSON string per line.

Deterministic (no randomness): hand-picked cases plus generated runs of whitespace, digits and long words.
Usage: python3 test/tools/tok_corpus.py > fixtures/vocab/corpus.txt
"""
import json

cases = [
    "", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", " \t\n \r\n  ", "\t\t\tx", "a\n\nb", "a \n b",
    "Hello world", " Hello world", "Hello world ", "  Hello  world  ", "Hello\tworld", "Hello\nworld",
    "hello", "HELLO", "Hello, World!", "The quick brown fox jumps over the lazy dog.",
    "don't", "Don't", "DON'T", "I'LL", "I'll", "you're", "YOU'RE", "we've", "WE'VE", "she'd", "SHE'D", "I'm", "I'M",
    "it's", "IT'S", "'Twas", "HE'Sok", "I'Mhere", "'ReAL", "x'Ve", "'LLama", "'s 't 're 've 'm 'll 'd", "''", "'", "' s", "rock'n'roll", "O'Neill's", "l'été",
    "1", "12", "123", "1234", "12345", "123456", "1234567", "12345678", "123456789", "1234567890", "12345678901",
    "123456789012", "3.14159", "1,000,000", "-42", "+7", "1e10", "0x1F", "v1.2.3", "2024-01-01", "12:30:45",
    "a1b2c3", "abc123def", "١٢٣٤٥", "४२", "①②③", "½ ¼ ¾", "Ⅷ",
    "def foo(x):\n    return x + 1\n", "for i in range(10):\n\tprint(i)", "if (a && b) { return -1; }",
    "int main(int argc, char **argv) {\n  printf(\"%d\\n\", argc);\n  return 0;\n}",
    "{\"key\": \"value\", \"n\": [1, 2, 3], \"ok\": true}", "x = {'a': 1, 'b': [None, 2.5]}",
    "#include <stdio.h>", "// comment\n/* block */", "a->b = c::d<e>();", "s = \"\"\"doc\"\"\"", "<div class=\"x\">hi</div>",
    "SELECT * FROM t WHERE id = 1;", "$ ls -la | grep foo > out.txt 2>&1", "https://example.com/path?q=1&r=2#frag",
    "user@example.com", "C:\\Users\\name\\file.txt", "    indented", "\tindented", "trailing   ",
    "...", "!!!", "???", "?!?!", "--", "---", "-->", "<!--", "==>", "!=", "<=>", "***", "###", "@@@", "~~~", "^^^",
    "(((", ")))", "[[[]]]", "{{}}", "a.b,c;d:e", "Hello...world", "wait—what", "quote “smart” ‘quotes’", "«guillemets»",
    "¿Qué?", "¡Hola!", "naïve café", "Ångström", "Straße", "ﬁ ligature", "e\u0301", "n\u0303o",
    "你好", "你好，世界！", "中文测试文本", "我爱北京天安门。", "漢字とかな", "こんにちは", "カタカナ", "ひらがなカタカナ漢字",
    "ｶﾀｶﾅ", "東京タワー", "日本語のテキストです。", "안녕하세요", "한국어 텍스트", "안녕, 세계!", "ㄱㄴㄷ",
    "😀", "😀😃😄", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "🇺🇸🇯🇵", "I ❤ NY", "emoji😀in😀text", " 🎉 party 🎉 ",
    "مرحبا بالعالم", "العربية", "שלום עולם", "עברית", "Привет, мир!", "Русский текст", "ПРИВЕТ", "नमस्ते दुनिया", "हिन्दी",
    "Ελληνικά", "ภาษาไทย", "Tiếng Việt", "ქართული", "Հայերեն", "বাংলা", "தமிழ்", "ꯃꯤꯇꯩ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𐐀𐐁",
    "mixed English 中文 and 日本語", "Hello世界", "abcабвαβγ", "123abc中文", "English, Русский, العربية",
    "<s>", "</s>", "<unk>", "<s>Hello</s>", "Hello <s> world", " <s> ", "<s><s>", "</s></s>", "a</s>b",
    "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜begin▁of▁sentence｜>Hi<｜end▁of▁sentence｜>",
    "<｜User｜>Hello<｜Assistant｜>Hi", "<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "<|end_of_text|>", "<|endoftext|>", "<s", "s>", "<0x41>", "▁", "▁▁", "▁hello", "_hello",
    "\x00", "a\x00b", "\x01\x02\x03", "\x7f", "\u0085", "\u00a0", "a\u00a0b", "\u2028", "\u3000x", "\ufeff", "\u200b",
    "\ufffd", "\U0001f600\U0001f600", "\U000e0041", "\U0010ffff", "\ue000", "ÿ", "Ā", "ꙁ",
    "Ⓐⓑ", "™", "©2024", "€100", "£5", "¥1000", "§3", "°C", "±1", "×÷", "√2", "∑∫∂", "→←↑↓", "★☆", "♠♣♥♦",
    "The year 1999 was great", "Call 555-1234 now", "Price: $19.99", "50% off!", "#hashtag @mention",
    "CamelCaseWord", "snake_case_word", "kebab-case-word", "SCREAMING_CASE", "mIxEd CaSe",
    "a b c d e f g", "a  b   c    d", "x" * 1, "Hello\r\nWorld\r\n", "Line1\nLine2\nLine3", "\n\n\n\n",
    " leading", "trailing ", "  both  ", "\ttab\t", "   \n   ",
]
# whitespace runs
for n in (2, 3, 4, 5, 8, 16, 33):
    cases.append(" " * n + "x")
    cases.append("x" + " " * n + "y")
    cases.append("\t" * n)
for n in (1, 2, 3, 7):
    cases.append("\n" * n + "x")
    cases.append("a" + " \n" * n + "b")
# digit runs 1..12
for n in range(1, 13):
    cases.append("".join(str((i * 7 + 3) % 10) for i in range(n)))
    cases.append("x" + "9" * n + "y")
# long words and long runs
cases += [
    "a" * 300, "ab" * 200, "supercalifragilisticexpialidocious" * 5, "Pneumonoultramicroscopicsilicovolcanoconiosis",
    "中" * 200, "😀" * 50, "é" * 100, " " * 500, "\n" * 200, "1" * 100, "!" * 150, "ab cd " * 60,
    "antidisestablishmentarianism " * 10, "x" * 1000,
]
seen = set()
for c in cases:
    if c in seen:
        continue
    seen.add(c)
    print(json.dumps(c, ensure_ascii=True))
