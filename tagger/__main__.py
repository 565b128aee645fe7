from tagger.cli import app

app(prog_name="tagger")
