"""nmea0183: sentences from the public examples, checksums computed here on their own."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.nmea0183 import Nmea0183Codec, checksum, checksums, checksums_hold
from gateway.core.records import Reason, make_codec


def xor(body: bytes) -> int:
    value = 0
    for byte in body:
        value ^= byte
    return value


def sentence(body: bytes, start: bytes = b"$", hexes: bytes = b"%02X") -> bytes:
    return start + body + b"*" + hexes % xor(body)


# Talker sentences of a GPS fix (GGA, GSA, GSV, RMC, VTG, GLL), a multi-constellation talker,
# a Garmin proprietary sentence and an AIS message: the examples the specs' readers quote.
EXAMPLES = [
    (b"GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,", b"$"),
    (b"GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1", b"$"),
    (b"GPGSV,2,1,08,01,40,083,46,02,17,308,41,12,07,344,39,14,22,228,45", b"$"),
    (b"GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W", b"$"),
    (b"GPVTG,054.7,T,034.4,M,005.5,N,010.2,K", b"$"),
    (b"GPGLL,4916.45,N,12311.12,W,225444,A,", b"$"),
    (b"GNRMC,092750.000,A,5321.6802,N,00630.3372,W,0.02,31.66,280511,,,A", b"$"),
    (b"PGRME,15.0,M,45.0,M,25.0,M", b"$"),
    (b"AIVDM,1,1,,B,177KQJ5000G?tO`K>RA1wUbN0TKH,0", b"!"),
]
LINES = [sentence(body, start) for body, start in EXAMPLES]


def test_the_checksums_here_match_the_published_ones():
    published = [b"*47", b"*39", b"*75", b"*6A", b"*48", b"*1D", None, b"*1C", b"*5C"]
    for line, stated in zip(LINES, published, strict=True):
        assert stated is None or line.endswith(stated), line


def test_every_sentence_is_kept_with_its_address_and_its_fields_verbatim():
    decoded = make_codec("nmea0183").decode(LINES)
    assert decoded.rejections == []
    assert decoded.counters is None
    assert decoded.records == [
        body.split(b",", 1)[0] + b',"' + body.split(b",", 1)[1] + b'"' for body, _ in EXAMPLES
    ]
    assert decoded.records[0] == (
        b'GPGGA,"123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"'
    )


def test_the_shape_is_a_record_type_and_one_fields_column():
    shape = make_codec("nmea0183").shape()
    assert shape.names == ("record_type", "fields")
    assert (shape.counter_field, shape.time_field, shape.record_type) == (None, None, True)


@pytest.mark.parametrize(
    ("line", "record"),
    [
        (sentence(b"GPGGA,1,2", hexes=b"%02x"), b'GPGGA,"1,2"'),  # lower-case hex
        (b"$GPGGA,1,2", b'GPGGA,"1,2"'),  # no checksum: optional in the standard
        (sentence(b"GPTXT"), b"GPTXT,"),  # no fields at all
        (sentence(b"GPTXT,"), b"GPTXT,"),  # one empty field
        (sentence(b"GPTXT,hello world"), b"GPTXT,hello world"),  # one field: no quotes needed
        (sentence(b'PXYZ,say "hi",1'), b'PXYZ,"say ""hi"",1"'),
        (sentence(b"PMTK001,604,3"), b'PMTK001,"604,3"'),
    ],
)
def test_sentences_the_standard_allows(line, record):
    codec = make_codec("nmea0183")
    assert codec.decode([line]).records == [record]
    assert codec.decode([line, line]).records == [record, record]  # the whole-read path too


def test_a_sentence_longer_than_82_bytes_is_kept():
    body = b"PXYZ," + b",".join(b"%d" % n for n in range(60))
    line = sentence(body)
    assert len(line) > 82
    assert make_codec("nmea0183").decode([line]).records == [b'PXYZ,"' + body[5:] + b'"']


@pytest.mark.parametrize(
    ("line", "reason", "detail"),
    [
        (b"", Reason.EMPTY, "empty line"),
        (b"GPGGA,1,2*00", Reason.MALFORMED, "'GPGGA,1,' does not start with $ or !"),
        (
            b"$GPGGA,1,2*48",
            Reason.BAD_CHECKSUM,
            "checksum 48 does not match 55",
        ),
        (b"$GPGGA,1,2*4", Reason.MALFORMED, "checksum '4' is not two hex digits at the end"),
        (b"$GPGGA,1,2*4g", Reason.MALFORMED, "checksum '4g' is not two hex digits at the end"),
        (
            b"$GPGGA,1*2,3*00",
            Reason.MALFORMED,
            "checksum '2,3*00' is not two hex digits at the end",
        ),
        (
            b"$gpgga,1,2",
            Reason.MALFORMED,
            "address 'gpgga' is not a letter then up to 15 of A-Z, 0-9",
        ),
        (b"$,1,2", Reason.MALFORMED, "address '' is not a letter then up to 15 of A-Z, 0-9"),
        (b"$GPGGA,1,\t2", Reason.MALFORMED, "byte 9 (0x09) is not printable ASCII"),
        (b"$GPGGA,caf\xc3\xa9", Reason.MALFORMED, "byte 10 (0xC3) is not printable ASCII"),
        (b"$GPGGA,\xff", Reason.INVALID_UTF8, "invalid UTF-8 at byte 7 of 8"),
    ],
)
def test_rejections_say_why_with_the_numbers(line, reason, detail):
    assert xor(b"GPGGA,1,2") == 0x55
    decoded = make_codec("nmea0183").decode([line])
    assert [(r.reason, r.detail) for r in decoded.rejections] == [(reason, detail)]


def test_a_wrong_checksum_is_counted_and_its_neighbours_kept():
    good = LINES[:3]
    bad = LINES[3][:-2] + b"00"
    decoded = make_codec("nmea0183").decode([*good, bad, *good])
    assert len(decoded.records) == 6
    expected = xor(EXAMPLES[3][0])
    assert [(r.reason, r.detail) for r in decoded.rejections] == [
        (Reason.BAD_CHECKSUM, f"checksum 00 does not match {expected:02X}")
    ]


def test_the_sentence_filter_keeps_one_address():
    codec = make_codec("nmea0183", sentence="GPGGA")
    decoded = codec.decode(LINES[:2])
    assert decoded.records == [make_codec("nmea0183").decode(LINES[:1]).records[0]]
    assert [r.detail for r in decoded.rejections] == ["sentence 'GPGSA' is not GPGGA"]
    with pytest.raises(ValueError, match="NMEA sentence address 'gp' is not a letter"):
        Nmea0183Codec(sentence="gp")


BODY = st.binary(max_size=300)


@given(st.lists(BODY, max_size=40))
def test_checksums_of_a_read_equal_checksum_line_by_line(bodies):
    assert checksums(bodies) == bytes(xor(body) for body in bodies)
    assert all(checksum(body) == xor(body) for body in bodies)


FIELD_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="*"), max_size=30
)
ANY_SENTENCE = st.builds(
    lambda start, address, fields, hexes, keep: (
        sentence((address + fields).encode(), start, hexes)
        if keep
        else start + (address + fields).encode()
    ),
    st.sampled_from([b"$", b"!"]),
    st.from_regex(r"[A-Z][A-Z0-9]{1,6}", fullmatch=True),
    st.one_of(st.just(""), FIELD_TEXT.map(lambda text: "," + text)),
    st.sampled_from([b"%02X", b"%02x"]),
    st.booleans(),
)
ANY_LINE = st.one_of(
    ANY_SENTENCE, ANY_SENTENCE, st.binary(max_size=40).filter(lambda b: b"\n" not in b)
)


@given(st.lists(ANY_LINE, max_size=30))
def test_the_whole_read_path_and_the_line_path_agree(lines):
    codec = make_codec("nmea0183")
    whole = codec.decode(lines)
    records, rejected = [], []
    for line in lines:
        one = codec.decode([line])
        records += one.records
        rejected += [(r.reason, r.detail) for r in one.rejections]
    assert whole.records == records
    assert [(r.reason, r.detail) for r in whole.rejections] == rejected


# -- the whole-read path against a plain reference ----------------------------------------


def reference(line: bytes) -> tuple[bytes | None, Reason | None]:
    """What the codec must make of one line, written plainly from docs/formats.md: the record,
    or the reason it is refused."""
    if not line:
        return None, Reason.EMPTY
    if line[:1] not in (b"$", b"!"):
        return None, Reason.MALFORMED
    if any(byte < 0x20 or byte > 0x7E for byte in line):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return None, Reason.INVALID_UTF8
        return None, Reason.MALFORMED
    body, star, given = line[1:].partition(b"*")
    if star:
        if len(given) != 2 or any(chr(c) not in "0123456789abcdefABCDEF" for c in given):
            return None, Reason.MALFORMED
        if int(given, 16) != xor(body):
            return None, Reason.BAD_CHECKSUM
    address, _, fields = body.partition(b",")
    if not (
        1 <= len(address) <= 16
        and chr(address[0]) in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        and all(chr(c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" for c in address)
    ):
        return None, Reason.MALFORMED
    if b"," in fields or b'"' in fields:
        fields = b'"' + fields.replace(b'"', b'""') + b'"'
    return address + b"," + fields, None


def decoded_as_reference(lines: list[bytes]) -> tuple[list[bytes], list[Reason]]:
    results = [reference(line) for line in lines]
    return [r for r, _ in results if r is not None], [why for _, why in results if why]


# Published sentences (receiver manuals and the gpsd/pynmea2 test captures): a u-blox epoch,
# a SiRF GSV set, a Garmin proprietary, u-blox PUBX (over 82 bytes), AIS.
CAPTURE = [
    b"$GPRMC,083559.00,A,4717.11437,N,00833.91522,E,0.004,77.52,091202,,,A*57",
    b"$GPVTG,77.52,T,,M,0.004,N,0.008,K,A*06",
    b"$GPGGA,092725.00,4717.11399,N,00833.91590,E,1,08,1.01,499.6,M,48.0,M,,*5B",
    b"$GPGSA,A,3,23,29,07,08,09,18,26,28,,,,,1.94,1.18,1.54*0D",
    b"$GPGSV,3,1,10,23,38,230,44,29,71,156,47,07,29,116,41,08,09,081,36*7F",
    b"$GPGSV,3,2,10,10,07,189,,05,05,220,,09,34,274,42,18,25,309,44*72",
    b"$GPGSV,3,3,10,26,82,187,47,28,43,056,46*77",
    b"$GPGLL,4717.11364,N,00833.91565,E,092321.00,A,A*60",
    b"$GPZDA,082710.00,16,09,2002,00,00*64",
    b"$PGRME,15.0,M,45.0,M,25.0,M*1C",
    b"$PUBX,00,081350.00,4717.113210,N,00833.915187,E,546.589,G3,2.1,2.0,0.007,77.52,"
    b"0.007,,0.92,1.19,0.77,9,0,0*5F",
    b"!AIVDM,1,1,,B,177KQJ5000G?tO`K>RA1wUbN0TKH,0*5C",
]


def test_a_published_capture_reads_as_the_reference_says_whole_or_with_faults():
    codec = make_codec("nmea0183")
    records, reasons = decoded_as_reference(CAPTURE)
    assert reasons == [] and len(records) == len(CAPTURE)  # the published checksums are right
    assert codec.decode(CAPTURE).records == records
    dollar_only = [line for line in CAPTURE if line[:1] == b"$"]
    assert codec.decode(dollar_only).records == decoded_as_reference(dollar_only)[0]
    faulty = [
        *CAPTURE[:3],
        CAPTURE[3][:-2] + b"00",  # bad checksum
        CAPTURE[4][:-3],  # no checksum
        CAPTURE[5][:-2] + CAPTURE[5][-2:].lower(),  # lower-case hex (digits only: same)
        b"$GPGGA,092725.00,4717.11399,N*2g",  # not hex
        b"$gpgga,1,2*55",  # lower-case address (checksum right for the body? no: refused)
        *CAPTURE[6:],
    ]
    whole = codec.decode(faulty)
    expected_records, expected_reasons = decoded_as_reference(faulty)
    assert whole.records == expected_records
    assert [r.reason for r in whole.rejections] == expected_reasons
    assert Reason.BAD_CHECKSUM in expected_reasons


PRINTABLE_NO_STAR = st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="*")
FAST_FIELDS = st.lists(
    st.text(st.sampled_from("0123456789.NSEWAM-"), max_size=12), min_size=2, max_size=20
).map(",".join)
ODD_FIELDS = st.text(PRINTABLE_NO_STAR, max_size=140)  # quotes, '!', '$', long lines, no commas
SENTENCE_PARTS = st.tuples(
    st.sampled_from([b"$", b"$", b"$", b"!"]),
    st.one_of(
        st.sampled_from(["GPGGA", "GPRMC", "GNGSV", "PUBX", "PGRME", "AIVDM"]),
        st.from_regex(r"[A-Z][A-Z0-9]{0,16}", fullmatch=True),  # 17 is one too many
    ),
    st.one_of(FAST_FIELDS, FAST_FIELDS, ODD_FIELDS),
    st.sampled_from(["right", "right", "right", "lower", "wrong", "none"]),
)


def build(parts: tuple[bytes, str, str, str]) -> bytes:
    start, address, fields, checksum_kind = parts
    body = (address + "," + fields).encode()
    value = xor(body)
    match checksum_kind:
        case "right":
            return start + body + b"*%02X" % value
        case "lower":
            return start + body + b"*%02x" % value
        case "wrong":
            return start + body + b"*%02X" % (value ^ 0x10)
        case _:
            return start + body


@given(
    st.one_of(
        st.lists(SENTENCE_PARTS.map(build), min_size=1, max_size=25),
        st.lists(
            st.tuples(st.sampled_from([b"$"]), st.just("GPGGA"), FAST_FIELDS, st.just("right")).map(
                build
            ),
            min_size=1,
            max_size=25,
        ),
        st.lists(st.one_of(SENTENCE_PARTS.map(build), st.binary(max_size=40)), max_size=25),
    )
)
def test_any_read_gives_the_reference_rows_and_rejections(lines):
    lines = [line for line in lines if b"\n" not in line and b"\r" not in line]
    decoded = make_codec("nmea0183").decode(lines)
    records, reasons = decoded_as_reference(lines)
    assert decoded.records == records
    assert [r.reason for r in decoded.rejections] == reasons


@given(
    st.lists(
        st.tuples(st.text(PRINTABLE_NO_STAR, min_size=1, max_size=125), st.integers(0, 255)),
        min_size=1,
        max_size=30,
    ),
    st.booleans(),
)
def test_checksums_hold_exactly_when_every_stated_checksum_is_right(bodies, lower):
    lines, right = [], True
    for text, stated in bodies:
        body = text.encode()
        lines.append(b"$" + body + (b"*%02x" if lower else b"*%02X") % stated)
        right &= stated == xor(body)
    assert checksums_hold(lines) is right
    correct = [b"$" + t.encode() + b"*%02X" % xor(t.encode()) for t, _ in bodies]
    assert checksums_hold(correct)
