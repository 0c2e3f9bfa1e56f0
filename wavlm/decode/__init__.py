"""Decoding CTC log-probabilities into words: lexicons, n-gram LMs (ARPA), flashlight-text's beam search."""
