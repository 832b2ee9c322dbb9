"""Mean-pooled layer representations: one per encoder layer and sentence, padding left out, order kept."""

import torch

from subnetworks.nn.representations import mean_pooled_layers

CPU = torch.device("cpu")


def test_a_sentence_is_represented_the_same_alone_and_padded_in_a_batch(tiny_seqcls, tokenizer):
    sentences = ["the a", "the a the a the a the a", "a"]
    ids = tokenizer(sentences)["input_ids"]
    batched = mean_pooled_layers(tiny_seqcls, ids, tokenizer.pad_token_id, device=CPU, batch_size=3)
    layers = tiny_seqcls.config.num_hidden_layers
    assert batched.shape == (layers, 3, tiny_seqcls.config.hidden_size)
    for i, row in enumerate(ids):
        alone = mean_pooled_layers(tiny_seqcls, [row], tokenizer.pad_token_id, device=CPU)
        assert torch.allclose(alone[:, 0], batched[:, i], atol=1e-5)  # padding is neither attended nor averaged
    hidden = tiny_seqcls.base_model(torch.tensor([ids[1]]), output_hidden_states=True).hidden_states
    assert torch.allclose(batched[-1, 1], hidden[-1][0].mean(0), atol=1e-5)  # the last layer's output, averaged
    assert torch.allclose(batched[0, 1], hidden[1][0].mean(0), atol=1e-5)  # the first layer's, not the embeddings
