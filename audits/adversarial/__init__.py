"""Adversarial audits: try to get the forgotten knowledge back (Lynch et al. 2024).

relearn (finetune relearning), icl (in-context relearning), framing (jailbreak templates and
the prompting baseline), variants (paraphrase and form), kway (many-way choice), lens (logit
lens and linear probes), suffix (bounded GCG-like search); runner runs them on several models.
No gradio here; plain data out.
"""
