"""Small dataset files in each supported format, written into a folder for the ingest tests."""

from __future__ import annotations

from pathlib import Path

# Three users, four movies; user 2 rates movie 3 twice only in the MovieTweetings files.
ML100K_DATA = "1\t1\t5\t881250949\n1\t2\t3\t881250950\n2\t1\t4\t881250951\n3\t3\t1\t881250952\n"
ML100K_ITEM = (
    "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    "2|GoldenEye (1995)|01-Jan-1995||http://x|0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0|0\n"
    "3|Café Society (1995)|01-Jan-1995||http://x|0|0|0|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0\n"
    "4|Unknown movie|||http://x|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
)
ML1M_RATINGS = "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n"
ML1M_MOVIES = (
    "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
    "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
)
CSV_RATINGS = "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,0.5,964981247\n2,1,2.5,1445714994\n"
CSV_MOVIES = (
    "movieId,title,genres\n"
    "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
    '3,"American President, The (1995)",Comedy|Drama|Romance\n'
    "5,Babylon 5,(no genres listed)\n"
)
CSV_TAGS = (
    "userId,movieId,tag,timestamp\n2,1,Pixar,1445714994\n3,1,pixar ,1445714995\n2,1,fun,1445714996\n2,3,politics,1\n"
)
MT_RATINGS = (
    "1::0114709::7::1365029107\n1::0113497::10::1366576639\n2::0114709::3::1364690142\n2::0114709::9::1364690200\n"
)
MT_MOVIES = "0114709::Toy Story (1995)::Animation|Comedy\n0113497::Jumanji (1995)::\n"
NETFLIX_HEADER = (
    "show_id,type,title,director,cast,country,date_added,release_year,rating,duration,listed_in,description\n"
)
NETFLIX_ROWS = (
    "s1,Movie,Dick Johnson Is Dead,Kirsten Johnson,,United States,25-Sep-21,2020,PG-13,90 min,Documentaries,"
    '"A film, with commas."\n'
    's2,TV Show,Blood & Water,,"Ama Qamata, Khosi Ngema",South Africa,"September 24, 2021",2021,TV-MA,2 Seasons,'
    '"International TV Shows, TV Dramas","Two sisters, maybe."\n'
    "s3,Movie,Kids Flick,,,,,2019,TV-Y,74 min,Children & Family Movies,Short.\n"
    "s4,Movie,Louis C.K. 2017,Louis C.K.,Louis C.K.,United States,4-Apr-17,2017,74 min,,Movies,Stand-up.\n"
)


def write(folder: Path, files: dict[str, str], encoding: str = "utf-8") -> Path:
    """Write ``files`` (name -> text) into ``folder`` and return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding=encoding)
    return folder


def ml100k(folder: Path) -> Path:
    """An ml-100k folder (``u.item`` in latin-1, as GroupLens ships it)."""
    write(folder, {"u.data": ML100K_DATA})
    return write(folder, {"u.item": ML100K_ITEM}, encoding="latin-1")


def ml1m(folder: Path) -> Path:
    """An ml-1m folder (latin-1 ``::`` files)."""
    return write(folder, {"ratings.dat": ML1M_RATINGS, "movies.dat": ML1M_MOVIES}, encoding="latin-1")


def ml_csv(folder: Path, *, tags: bool = True) -> Path:
    """An ml-latest-small style folder."""
    files = {"ratings.csv": CSV_RATINGS, "movies.csv": CSV_MOVIES}
    if tags:
        files["tags.csv"] = CSV_TAGS
    return write(folder, files)


def movietweetings(folder: Path) -> Path:
    """A MovieTweetings folder."""
    return write(folder, {"ratings.dat": MT_RATINGS, "movies.dat": MT_MOVIES})


def netflix(folder: Path) -> Path:
    """A Netflix-titles CSV with quoted commas, both date formats and the shifted-runtime quirk."""
    write(folder, {"netflix_titles.csv": NETFLIX_HEADER + NETFLIX_ROWS})
    return folder / "netflix_titles.csv"
