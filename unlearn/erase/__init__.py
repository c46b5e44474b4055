"""ERASE: in-context learning whose training examples can be exactly unlearned (Muresanu et al.).

qkmeans (selection + certified deletion), embeddings, select, evaluate, sisa, cost, cli.
Never imports gradio or `audits`.
"""
