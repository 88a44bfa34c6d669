"""The 118 ImageNet dog classes under the names owners write (Udacity/AKC style), not WordNet's.

ImageNet names its dog classes after WordNet synsets ("Japanese spaniel", "Brabancon griffon",
"Mexican hairless", "basset", "chow"), several of them old or collective names. A user expects the
breed club's name: "Japanese chin", "Brussels griffon", "Xoloitzcuintli", "Basset hound", "Chow chow".
Spelling follows the Udacity dogImages classes (first letter capital, the rest lower case) except
that proper nouns keep their capitals ("German shepherd dog", "Cavalier King Charles spaniel").

Decisions that are not a plain respelling:
- 156 "Blenheim spaniel": Blenheim is a colour (chestnut on white); the synset's photos are nearly
  all Cavalier King Charles spaniels, so that is the name.
- 166 "Walker hound, Walker foxhound": the tricolour coonhound owners register as the Treeing Walker
  coonhound (AKC since 2012); ImageNet has no American foxhound class.
- 219 "cocker spaniel, English cocker spaniel, cocker": the photos are mostly American-type cockers;
  Udacity and AKC call that breed "Cocker spaniel" (and the English one "English cocker spaniel").
- 248 "Eskimo dog, husky": a husky-type Arctic sled dog (WordNet: "breed of heavy-coated Arctic sled
  dog"), not the small white spitz that AKC calls the American Eskimo dog (which ImageNet lacks), so
  it stays "Eskimo dog"; Siberian husky and Alaskan malamute are classes of their own.
- 158 "toy terrier": ImageNet's catch-all small terrier (English toy terriers, toy Manchesters,
  Russian toys), no single breed, so it stays "Toy terrier".
"""
from __future__ import annotations

IMAGENET_HEAD = "imagenet-dogs"  # the breed head of a fresh install: the ImageNet classifier's own dog classes

COMMON_NAMES: dict[int, str] = {
    151: "Chihuahua",
    152: "Japanese chin",  # Japanese spaniel
    153: "Maltese",  # Maltese dog, Maltese terrier
    154: "Pekingese",  # Pekinese, Peke
    155: "Shih Tzu",
    156: "Cavalier King Charles spaniel",  # Blenheim spaniel
    157: "Papillon",
    158: "Toy terrier",
    159: "Rhodesian ridgeback",
    160: "Afghan hound",
    161: "Basset hound",  # basset
    162: "Beagle",
    163: "Bloodhound",  # sleuthhound
    164: "Bluetick coonhound",  # bluetick
    165: "Black and tan coonhound",  # black-and-tan coonhound
    166: "Treeing Walker coonhound",  # Walker hound, Walker foxhound
    167: "English foxhound",
    168: "Redbone coonhound",  # redbone
    169: "Borzoi",  # Russian wolfhound
    170: "Irish wolfhound",
    171: "Italian greyhound",
    172: "Whippet",
    173: "Ibizan hound",  # Ibizan Podenco
    174: "Norwegian elkhound",  # elkhound
    175: "Otterhound",  # otter hound
    176: "Saluki",  # gazelle hound
    177: "Scottish deerhound",  # deerhound
    178: "Weimaraner",
    179: "Staffordshire bull terrier",  # Staffordshire bullterrier
    180: "American Staffordshire terrier",  # also "pit bull terrier" in WordNet
    181: "Bedlington terrier",
    182: "Border terrier",
    183: "Kerry blue terrier",
    184: "Irish terrier",
    185: "Norfolk terrier",
    186: "Norwich terrier",
    187: "Yorkshire terrier",
    188: "Wire fox terrier",  # wire-haired fox terrier
    189: "Lakeland terrier",
    190: "Sealyham terrier",  # Sealyham
    191: "Airedale terrier",  # Airedale
    192: "Cairn terrier",  # cairn
    193: "Australian terrier",
    194: "Dandie Dinmont terrier",  # Dandie Dinmont
    195: "Boston terrier",  # Boston bull
    196: "Miniature schnauzer",
    197: "Giant schnauzer",
    198: "Standard schnauzer",
    199: "Scottish terrier",  # Scotch terrier, Scottie
    200: "Tibetan terrier",  # chrysanthemum dog
    201: "Silky terrier",  # Sydney silky
    202: "Soft coated wheaten terrier",  # soft-coated wheaten terrier (AKC writes no hyphen)
    203: "West Highland white terrier",
    204: "Lhasa apso",  # Lhasa
    205: "Flat-coated retriever",
    206: "Curly-coated retriever",
    207: "Golden retriever",
    208: "Labrador retriever",
    209: "Chesapeake Bay retriever",
    210: "German shorthaired pointer",  # German short-haired pointer
    211: "Vizsla",  # Hungarian pointer
    212: "English setter",
    213: "Irish setter",  # red setter
    214: "Gordon setter",
    215: "Brittany",  # Brittany spaniel (AKC dropped "spaniel" in 1982)
    216: "Clumber spaniel",  # clumber
    217: "English springer spaniel",  # English springer
    218: "Welsh springer spaniel",
    219: "Cocker spaniel",  # cocker spaniel, English cocker spaniel, cocker
    220: "Sussex spaniel",
    221: "Irish water spaniel",
    222: "Kuvasz",
    223: "Schipperke",
    224: "Belgian sheepdog",  # groenendael
    225: "Belgian malinois",  # malinois
    226: "Briard",
    227: "Australian kelpie",  # kelpie
    228: "Komondor",
    229: "Old English sheepdog",  # bobtail
    230: "Shetland sheepdog",  # Shetland sheep dog, Shetland
    231: "Collie",
    232: "Border collie",
    233: "Bouvier des Flandres",  # Bouviers des Flandres
    234: "Rottweiler",
    235: "German shepherd dog",  # German shepherd, German police dog, alsatian
    236: "Doberman pinscher",  # Doberman
    237: "Miniature pinscher",
    238: "Greater Swiss mountain dog",
    239: "Bernese mountain dog",
    240: "Appenzeller sennenhund",  # Appenzeller
    241: "Entlebucher mountain dog",  # EntleBucher
    242: "Boxer",
    243: "Bullmastiff",  # bull mastiff
    244: "Tibetan mastiff",
    245: "French bulldog",
    246: "Great Dane",
    247: "Saint Bernard",  # St Bernard
    248: "Eskimo dog",  # Eskimo dog, husky: an Arctic sled dog, not the American Eskimo dog
    249: "Alaskan malamute",  # malamute, malemute
    250: "Siberian husky",
    251: "Dalmatian",  # coach dog, carriage dog
    252: "Affenpinscher",  # monkey pinscher, monkey dog
    253: "Basenji",
    254: "Pug",  # pug-dog
    255: "Leonberger",  # Leonberg
    256: "Newfoundland",  # Newfoundland dog
    257: "Great Pyrenees",
    258: "Samoyed",  # Samoyede
    259: "Pomeranian",
    260: "Chow chow",  # chow
    261: "Keeshond",
    262: "Brussels griffon",  # Brabancon griffon
    263: "Pembroke Welsh corgi",  # Pembroke
    264: "Cardigan Welsh corgi",  # Cardigan
    265: "Toy poodle",
    266: "Miniature poodle",
    267: "Standard poodle",
    268: "Xoloitzcuintli",  # Mexican hairless
}


def readable(label: str) -> str:
    """'001.Affenpinscher', 'n02085620-Chihuahua', 'Labrador_retriever' -> 'Affenpinscher', 'Chihuahua', ..."""
    name = label.strip()
    if "." in name and name.split(".", 1)[0].isdigit():
        name = name.split(".", 1)[1]
    if "-" in name and name.split("-", 1)[0][:1] == "n" and name.split("-", 1)[0][1:].isdigit():
        name = name.split("-", 1)[1]
    name = name.replace("_", " ")
    return name[:1].upper() + name[1:]


def common_name(index: int) -> str:
    """The owner's name for ImageNet dog class `index` (151..268); KeyError names the range otherwise."""
    try:
        return COMMON_NAMES[index]
    except KeyError:
        raise KeyError(f"ImageNet class {index} is not a dog class (dogs are 151..268)") from None


# Words owners add or leave off a breed's name: "Shikoku inu" is the Shikoku, "German shepherd" the
# German shepherd dog, "Pharaoh" the Pharaoh hound. A key drops them, so each spelling finds one breed.
SUFFIXES = ("dog", "hound", "inu", "ken")
MAX_BREED_LENGTH = 100  # the labels table's breed column


def breed_key(name: str) -> str:
    """What two spellings of one breed share: lower case, no punctuation or extra spaces, no suffix word."""
    words = "".join(c if c.isalnum() else " " for c in name.replace("'s ", " ").casefold()).split()
    words = ["saint" if w == "st" else w for w in words]
    while len(words) > 1 and words[-1] in SUFFIXES:
        words.pop()
    return " ".join(words)


def tidy_breed(name: str) -> str:
    """A new breed's spelling as the known ones are written: single spaces, underscores as spaces, the
    first letter a capital and the rest as typed ("shikoku inu" -> "Shikoku inu")."""
    words = name.replace("_", " ").split()
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def canonical_breed(name: str, known: list[str] | tuple[str, ...] = ()) -> str:
    """The one spelling of breed `name`: an ImageNet breed's common name, else the first of `known`
    (breeds already labeled) with the same key, else the tidied name. ValueError when it is empty or
    too long to store."""
    key = breed_key(name)
    if not key:
        raise ValueError("A breed name needs at least one letter or digit, e.g. 'Shikoku'.")
    if len(name) > MAX_BREED_LENGTH:
        raise ValueError(f"A breed name is at most {MAX_BREED_LENGTH} characters.")
    for candidate in (*COMMON_NAMES.values(), *known):
        if breed_key(candidate) == key:
            return candidate
    return tidy_breed(name)
