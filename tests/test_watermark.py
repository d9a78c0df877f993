from wazuh_integrator.watermark import Watermark


def test_idle_lines_advance_at_once() -> None:
    mark: Watermark[int] = Watermark(0)
    mark.line_without_work(10)
    mark.line_without_work(20)
    assert mark.position == 20


def test_position_waits_for_the_oldest_unsettled_line() -> None:
    mark: Watermark[int] = Watermark(0)
    settle_first = mark.line_with_work(10, 2)
    mark.line_without_work(20)
    settle_third = mark.line_with_work(30, 1)
    mark.line_without_work(40)

    settle_third()
    assert mark.position == 0, "a later line settling must not move the checkpoint"
    settle_first()
    assert mark.position == 0, "one of two deliveries of the first line is still out"
    settle_first()
    assert mark.position == 40


def test_runs_of_idle_lines_are_folded() -> None:
    mark: Watermark[int] = Watermark(None)
    settle = mark.line_with_work(1, 1)
    for end in range(2, 10_000):
        mark.line_without_work(end)
    assert len(mark._pending) == 2
    settle()
    assert mark.position == 9_999
    assert mark.in_flight_lines == 0
