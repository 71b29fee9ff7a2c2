"""Shared word lists of the sample generator, and the helper that writes them compactly."""

from __future__ import annotations

__all__ = ["FAMILY_NAMES", "GIVEN_NAMES", "STREET_KINDS", "STREET_NAMES", "words"]


def words(text: str) -> tuple[str, ...]:
    """Split a table of words written as one string (easier to read than a tuple literal)."""
    return tuple(text.split())


# Distinctive on purpose (see the package docstring): at least 5 characters, and none is a
# substring of any local-authority name in the shipped table (a test checks both).
GIVEN_NAMES: tuple[str, ...] = words(
    "Aurelie Bartholomew Cressida Damaris Evander Fenella Gwendolyn Horatio Isolde Jolyon "
    "Keziah Leopold Marisol Niamh Octavia Peregrine Quintessa Rosalind Seraphina Thaddeus "
    "Ottoline Valentina Wilhelmina Xanthe Yevgenia Zebedee Anouk Benedikt Clementine Dorotea "
    "Eulalia Florimond Ginevra Hyacinth Ignatius Jessamy Kasimir Lavinia Maximilian Nerissa "
    "Orsolya Perpetua Quillon Radegund Sigismund Tamsyn Ulrika Vespasian Winifred Ximena "
    "Yolanda Zenobia Artemisia Barnaby Cosimo Delphine Emmerich Fabienne Griselda Hortensia "
    "Isidore Jemima Leocadia Mirabel Zoë-Mireille Søren Bronisław Siobhán Aoibheann Ngozi "
    "Oluwaseun Ayodele Chidinma Parvati Anjali Rukmini Xiaoling Haruki Emeka"
)
FAMILY_NAMES: tuple[str, ...] = words(
    "Quenneville Ashbury-Thwaite Fairweather-Lomax Okonkwo-Brandt Vandersloot Pemberton-Quayle "
    "Zelazny Vasquez-Ormerod Trelawney-Fitch Blennerhassett Featherstonhaugh Cholmondeley "
    "Marjoribanks Drummond-Hay Quartermaine Ravenscroft-Ngata Ollerenshaw Higginbottom "
    "Wetherspoon-Vale Abernathy-Kowal Nakamura-Pryde Szczepanski Oyelaran Brzezinski "
    "Kowalczyk-Hume Villeneuve Desrosiers Lindqvist Fitzwarren Montmorency Plantagenet-Roe "
    "Tregothnan Pendragon-Eyre Illingworth Thistlewood Wolstenholme Aldersey-Quint "
    "Benedetto-Vane Castellanos Dimitriou-Shaw Eckersley-Grau Fortescue-Zhang Gwilliam-Oduya "
    "Hetherington-Blu Isherwood-Kamau Jagielska Kettlewell-Ruiz Lightowler Mackintosh-Vey "
    "Nettleship Oddfellow-Kaur Postlethwaite Quarrington Rushworth-Abebe Sowerbutts "
    "Tattersall-Ng Uttley-Moreau Vavasour Whitlock-Ansah Yarborough-Dunn Achterberg "
    "Bellingham-Osei Cartwright-Zoll Dunkerley Eversholt-Pike Farquharson Grimshaw-Adeyemi "
    "Hollingsworth Ingleby-Sato Jowett-Marchetti O'Callaghan-Wren Nkemelu-Barraclough "
    "Przybylski Żelazowska Ó'Súilleabháin Dvořáková Müller-Lüdenscheid"
)
STREET_NAMES: tuple[str, ...] = words(
    "Larkspur Quillfeather Brackenholt Wintercress Marchbanks Foxglove Hawkweed Starthistle "
    "Celandine Honeysuckle Meadowsweet Cowparsley Bellflower Sweetbriar Wolfsbane Juniperhill "
    "Saxifrage Tormentil Vervain Yellowrattle Mistlethrush Nightjar Fieldfare Whinchat "
    "Stonechat Redpoll Goldcrest Firecrest Wagtail Nuthatch Treecreeper Kittiwake Shearwater "
    "Guillemot Razorbill Oystercatcher Lapwing Dunnock Brambling Siskin Bullfinch Linnet "
    "Yellowhammer Corncrake Dotterel Greenshank Whimbrel Godwit Sanderling"
)
STREET_KINDS = ("Mews", "Close", "Rise", "Gardens", "Crescent", "Row", "Walk", "Lane", "Court")
