from runtimes.chunking import merge_spans


def test_spans_merge_into_windows_of_at_most_max_len():
    spans = [(0, 10), (12, 20), (25, 40), (41, 45), (60, 70)]
    assert merge_spans(spans, max_len=30) == [(0, 20), (25, 45), (60, 70)]


def test_a_long_span_stays_whole_and_empty_input_gives_no_windows():
    assert merge_spans([(0, 100), (101, 105)], max_len=30) == [(0, 100), (101, 105)]
    assert merge_spans([], max_len=30) == []
