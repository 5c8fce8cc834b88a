"""What a trace is run on: prompt files (`prompts`: JSON Lines of id, text, label, spans) and the spans they carry
(`spans`: character spans -> token ranges through the tokenizer's offsets). Nothing here loads a model."""
