"""Training-side tools of tagger: the synthetic corpus builder (``training.build_corpus``)."""
