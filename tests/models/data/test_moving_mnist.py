import torch

from models.data.moving_mnist import SPAN, moving_mnist, static_sequence, trajectories


def test_generation_is_deterministic_for_a_seed() -> None:
    digits = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    a = moving_mnist(digits, 8, torch.Generator().manual_seed(3))
    b = moving_mnist(digits, 8, torch.Generator().manual_seed(3))
    c = moving_mnist(digits, 8, torch.Generator().manual_seed(4))
    assert a.shape == (4, 8, 64, 64) and a.dtype == torch.uint8
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_digits_stay_inside_the_frame_and_bounce() -> None:
    positions = trajectories(50, 60, torch.Generator().manual_seed(0))
    assert positions.min() >= 0 and positions.max() <= SPAN
    steps = positions[:, 1:] - positions[:, :-1]
    assert (steps.sign() != steps[:, :1].sign()).any(), "some digit changes direction at a wall"


def test_one_digit_alone_keeps_its_ink() -> None:
    digit = torch.zeros(1, 28, 28, dtype=torch.uint8)
    digit[0, 10:18, 12:16] = 200
    frames = moving_mnist(torch.cat([digit, torch.zeros_like(digit)]), 5, torch.Generator().manual_seed(0))
    assert all(int(frame.sum()) == int(digit.sum()) for frame in frames[0])


def test_static_sequence_centres_the_digit() -> None:
    digit = torch.full((1, 28, 28), 7, dtype=torch.uint8)
    frames = static_sequence(digit, 3)
    assert frames.shape == (1, 3, 64, 64)
    assert torch.equal(frames[0, 0, 18:46, 18:46], digit[0]) and int(frames[0, 0].sum()) == 7 * 784
