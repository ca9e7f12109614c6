"""The fixed prompt data of the causal-response experiments: what the language model is asked, and about what.

A text is scored by appending a yes/no question about it and reading the probability that the model answers
"Yes". Everything here is plain, common-knowledge English, so that a small instruction-tuned model understands it.

``CONCEPTS``
    80 common, concrete concepts (lowercase nouns of one or two words) spread over food and drink, animals, tools,
    vehicles, places and nature, household objects, instruments, clothing, buildings and weather. No two are
    near-synonyms and none contains another as a word. Used in the definition round trip: the model defines a
    concept without naming it, then must pick that concept among distractors drawn from this list.
``GRADED``
    12 entries ``(concept, (level 1, level 2, level 3, level 4))``, coffee first: human-written descriptions of
    growing detail, from a vague few-word phrase (1), through one short specific sentence (2) and one sentence with
    two or three distinguishing facts (3), to two or three sentences of several specific, correct facts (4). None
    names its concept. The "Am I thinking of <concept>?" score should rise with the level.
``LISTS``
    12 list-completion prompts ``(header, three correct items)``: the model continues the list, either by plain
    forward prediction or by choosing the candidate item that best answers a criterion question built from the
    header. Categories have many members, and a wrong item (a city among prefectures, a land animal among sea
    mammals) is easy to recognise.
``STORIES``
    6 steering tasks ``(opening request, criterion question, held-out question)``: a story is written sentence by
    sentence, each sentence chosen among samples by its "Yes" probability under the criterion question; the
    held-out question means the same in other words and checks the steering without having been optimised.
    The first is the original one: a story about apples told like an old man.

``concept_words`` and ``mentions`` detect a text that gives its concept away, by substring, case-insensitive.
"""

from __future__ import annotations

__all__ = ["CONCEPTS", "GRADED", "LISTS", "STORIES", "concept_words", "mentions"]

CONCEPTS: tuple[str, ...] = (
    # food and drink
    "coffee", "bread", "cheese", "chocolate", "honey", "milk", "banana", "pizza", "carrot", "lemon", "ice cream",
    # animals
    "elephant", "giraffe", "penguin", "shark", "horse", "rabbit", "snake", "tiger", "eagle", "whale", "spider",
    "camel",
    # tools
    "hammer", "scissors", "shovel", "ladder", "wrench", "needle", "flashlight",
    # vehicles
    "bicycle", "airplane", "train", "submarine", "helicopter", "tractor", "rocket", "canoe",
    # places and nature
    "volcano", "desert", "beach", "forest", "island", "mountain", "river", "waterfall", "cave", "moon",
    # household objects
    "candle", "mirror", "umbrella", "clock", "pillow", "refrigerator", "toothbrush", "television", "bathtub",
    "washing machine",
    # instruments
    "piano", "guitar", "violin", "drum", "trumpet", "flute", "saxophone",
    # clothing
    "glove", "scarf", "jacket", "boot", "necklace",
    # buildings
    "castle", "lighthouse", "hospital", "library", "windmill", "pyramid",
    # weather
    "rainbow", "tornado", "snow", "thunder",
)

GRADED: tuple[tuple[str, tuple[str, str, str, str]], ...] = (
    ("coffee", (
        "Something people drink.",
        "A hot drink that many people have in the morning.",
        "A hot, bitter, dark brown drink made from roasted beans that helps people wake up.",
        "A hot, bitter, dark brown drink brewed from roasted and ground beans grown in Brazil, Colombia and "
        "Ethiopia. It keeps people awake, so many drink a cup at breakfast or at work. It is often served with "
        "milk and sugar.",
    )),
    ("bicycle", (
        "A way to get around.",
        "A vehicle that a person rides by pushing pedals.",
        "A vehicle with two wheels, pedals and handlebars that a person rides without an engine.",
        "A vehicle with two wheels, a chain, pedals and handlebars, powered only by the rider's legs. People ride "
        "it to work, to school or in races like the Tour de France, and riders often wear a helmet.",
    )),
    ("volcano", (
        "Something found in nature.",
        "A mountain that can erupt with fire and smoke.",
        "A mountain that erupts, sending hot lava, ash and smoke into the sky.",
        "A mountain with an opening down to melted rock deep under the ground. When it erupts, red-hot lava flows "
        "down its sides and clouds of ash rise into the sky. Mount Vesuvius buried the Roman town of Pompeii.",
    )),
    ("piano", (
        "Something that makes sound.",
        "A large musical instrument that people play with their fingers.",
        "A large musical instrument with black and white keys that people play while sitting on a bench.",
        "A large musical instrument with 88 black and white keys. Pressing a key makes a small felt hammer strike "
        "a string inside a wooden case. Mozart and Beethoven wrote many pieces for it.",
    )),
    ("elephant", (
        "A big animal.",
        "A very large grey animal that lives in Africa and Asia.",
        "A very large grey animal with a long trunk, big ears and two ivory tusks.",
        "The largest animal living on land, with thick grey skin, big flapping ears and a long trunk that it uses "
        "to grab food and spray water. Its ivory tusks are long teeth. It lives in herds in Africa and Asia.",
    )),
    ("umbrella", (
        "Something you carry.",
        "An object people hold over their heads when it rains.",
        "A folding object with a cloth canopy on a handle that keeps people dry in the rain.",
        "A folding object made of waterproof cloth stretched over thin metal ribs on a central stick with a "
        "curved handle. People open it and hold it over their heads to stay dry in the rain or to shade "
        "themselves from the sun. Closed, it is small enough to carry in a bag.",
    )),
    ("penguin", (
        "A kind of bird.",
        "A black and white bird that cannot fly.",
        "A black and white bird that cannot fly but swims well and lives near the South Pole.",
        "A black and white seabird that cannot fly but uses its wings as flippers to swim fast and catch fish. "
        "Most kinds live in the cold south, many of them on the ice of Antarctica. On land it waddles upright "
        "and slides on its belly.",
    )),
    ("lighthouse", (
        "A kind of building.",
        "A tall tower by the sea with a bright lamp on top.",
        "A tall tower on a rocky coast with a bright, turning lamp at the top that warns ships at night.",
        "A tall round tower built on a coast or a rocky island. At night a powerful lamp at its top turns and "
        "flashes so that ships can find their way and keep clear of dangerous rocks. In the past a keeper lived "
        "inside and tended the lamp.",
    )),
    ("honey", (
        "Something sweet to eat.",
        "A sweet, sticky food that bees make.",
        "A sweet, sticky, golden food that bees make from the nectar of flowers.",
        "A sweet, sticky, golden liquid that bees make from the nectar of flowers and store in wax combs inside "
        "their hive. Beekeepers collect it, and people spread it on toast or stir it into tea.",
    )),
    ("rainbow", (
        "Something in the sky.",
        "A curved band of many colours that appears in the sky.",
        "A curved band of colours that appears in the sky when sunlight shines through drops of water.",
        "An arc of red, orange, yellow, green, blue, indigo and violet that appears in the sky when sunlight is "
        "bent and split by drops of water. It is seen with the sun behind you, often just after a shower. In "
        "stories, a pot of gold waits at its end.",
    )),
    ("submarine", (
        "A kind of vehicle.",
        "A ship that can travel under the water.",
        "A long ship that dives and travels deep under the sea, using a periscope to see above the waves.",
        "A long, narrow ship that can dive and travel deep under the ocean for weeks. It fills tanks with water "
        "to sink and blows them empty to rise, and its crew looks above the waves through a periscope. Navies "
        "use it to carry torpedoes and missiles.",
    )),
    ("candle", (
        "Something that gives light.",
        "A stick of wax that burns to give light.",
        "A stick of wax with a string wick in the middle that gives a small flame when lit.",
        "A stick of wax with a cotton wick through its middle. When the wick is lit, the small flame melts the "
        "wax and burns slowly, giving a soft, flickering glow. People put them on birthday cakes and use them "
        "when the power goes out.",
    )),
)

LISTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Things you can read", ("a book", "a newspaper", "a letter")),
    ("Prefectures of Japan", ("Nagano", "Kyoto", "Hokkaido")),
    ("Mammals that live in the sea", ("dolphins", "whales", "seals")),
    ("Countries in South America", ("Brazil", "Argentina", "Peru")),
    ("String instruments", ("the violin", "the guitar", "the cello")),
    ("Vegetables that grow underground", ("carrots", "potatoes", "radishes")),
    ("Fruits that grow on trees", ("apples", "cherries", "oranges")),
    ("Animals that live in Africa", ("lions", "zebras", "giraffes")),
    ("Capital cities of Europe", ("Paris", "Berlin", "Madrid")),
    ("Sports played with a ball", ("football", "tennis", "basketball")),
    ("Things you find in a kitchen", ("a stove", "a fridge", "a sink")),
    ("States of the United States", ("Texas", "Ohio", "Oregon")),
)

STORIES: tuple[tuple[str, str, str], ...] = (
    ("Tell me a story about apples.", "Is this something an old man would say?",
     "Does this sound like an elderly man talking?"),
    ("Tell me a story about the sea.", "Is this sentence happy?", "Does this sentence sound cheerful?"),
    ("Tell me a story about a dog.", "Is this something a young child would say?",
     "Does this sound like a little kid talking?"),
    ("Tell me a story about a city.", "Is this something a pirate would say?",
     "Does this sound like a pirate captain talking?"),
    ("Tell me a story about the night sky.", "Is this something a scientist would say?",
     "Does this sound like a researcher explaining something?"),
    ("Tell me a story about a kitchen.", "Is this sentence spooky?", "Does this sentence sound scary?"),
)


def concept_words(concept: str) -> tuple[str, ...]:
    """The lowercase forms that give ``concept`` away: the concept, each of its words longer than 3 letters, and
    their plurals in "s" and "es" (and "ies" for a word ending in a consonant and "y", as library -> libraries)."""
    concept = concept.strip().lower()
    stems = [concept] + [w for w in concept.split() if len(w) > 3 and w != concept]
    forms: list[str] = []
    for stem in stems:
        plurals = [stem + "s", stem + "es"]
        if len(stem) > 1 and stem[-1] == "y" and stem[-2] not in "aeiou":
            plurals.append(stem[:-1] + "ies")
        for form in (stem, *plurals):
            if form not in forms:
                forms.append(form)
    return tuple(forms)


def mentions(text: str, concept: str) -> bool:
    """Whether ``text`` contains any of ``concept_words(concept)`` as a substring, case-insensitive."""
    low = text.lower()
    return any(form in low for form in concept_words(concept))
