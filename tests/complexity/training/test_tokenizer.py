import numpy as np
import pytest

from complexity.training.tokenizer import (
    SPECIAL_TOKENS,
    average_ranks,
    expert_shares,
    id_frequency_spearman,
    load_tokenizer,
    train_tokenizer,
)


def test_round_trip_and_special_token_ids(tokenizer_file):
    tokenizer = load_tokenizer(tokenizer_file)
    assert [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2]
    assert tokenizer.get_vocab_size() == 320
    for text in ["the cat sat.", "  leading spaces\n\ttabs", "unseen: Zürich, 東京, 🙂 and <|endoftext|> as text", ""]:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        assert tokenizer.decode(ids, skip_special_tokens=False) == text
    # merges learned: a frequent word of the corpus is one token
    assert len(tokenizer.encode(" the").ids) == 1


def test_average_ranks_share_ties():
    assert average_ranks(np.array([10, 20, 20, 5])).tolist() == [2.0, 3.5, 3.5, 1.0]


def test_spearman_hand_computed():
    special = [0, 0, 0]
    assert id_frequency_spearman(np.array(special + [50, 40, 30, 20, 10])) == pytest.approx(-1.0)
    assert id_frequency_spearman(np.array(special + [1, 2, 3, 4])) == pytest.approx(1.0)
    # ids 0..3 (deviations from the mean rank -1.5,-.5,.5,1.5), counts 3,1,2,2 (ranks 4,1,2.5,2.5: deviations
    # 1.5,-1.5,0,0): rho = -1.5 / sqrt(5 * 4.5) = -0.316
    assert id_frequency_spearman(np.array(special + [3, 1, 2, 2])) == pytest.approx(-1.5 / np.sqrt(5 * 4.5))
    with pytest.raises(ValueError, match="counts"):
        id_frequency_spearman(np.array(special + [7, 7, 7]))


def test_expert_shares_range_and_modulo():
    counts = np.array([8, 4, 2, 2, 1, 1, 1, 1])  # 20 occurrences over 8 ids
    assert expert_shares(counts, 2, "range").tolist() == [16 / 20, 4 / 20]  # ids 0-3 | 4-7
    assert expert_shares(counts, 2, "modulo").tolist() == [12 / 20, 8 / 20]  # even | odd ids
    with pytest.raises(ValueError, match="routing"):
        expert_shares(counts, 2, "hash")
    with pytest.raises(ValueError, match="num_experts"):
        expert_shares(counts, 9, "range")


def test_bad_tokenizer_inputs(tmp_path, corpus):
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(sorted(corpus.iterdir()), vocab_size=100)
    with pytest.raises(ValueError, match="does not exist"):
        load_tokenizer(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="readable"):
        load_tokenizer(tmp_path / "bad.json")
